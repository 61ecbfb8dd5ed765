using CriuPS.Engine.Dump;
using CriuPS.Engine.EngineProcess;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Restore;
using Xunit;

namespace CriuPS.Engine.Tests.EngineProcess;

// What the session and criups-engine say to each other: every option of a checkpoint or a restore crosses, failures come back as
// the session would have thrown them, and the engine's side answers a request it cannot run with a failure.
public class EngineProcessProtocolTests
{
    // Options the request does not carry: the page server's (its certificates stay in the session, which runs those
    // checkpoints) and the cancellation (the end of the engine's stdin is the session's Ctrl+C).
    private static readonly string[] NotCarried = [nameof(DumpOptions.PageServer), nameof(DumpOptions.Cancellation), nameof(DumpOptions.CallerProcessId)];

    [Fact]
    public void EveryOptionOfACheckpointCrosses()
    {
        // Each public option set to a value other than its default, by reflection: an option added later and left out
        // of the request fails here.
        var options = new DumpOptions { ProcessId = 4242 };
        var properties = SetUnusual(options, NotCarried);
        var stream = new MemoryStream();
        EngineProcessProtocol.WriteDumpRequest(new BinaryWriter(stream), options, callerProcessId: 77);
        stream.Position = 0;
        using var cancellation = new CancellationTokenSource();
        var read = Assert.IsType<DumpOptions>(EngineProcessProtocol.ReadRequest(new BinaryReader(stream), cancellation.Token, _ => { }));
        AssertSame(properties, options, read);
        Assert.Equal(77, read.CallerProcessId);
        Assert.Equal(cancellation.Token, read.Cancellation);
        Assert.Equal(stream.Length, stream.Position);
    }

    [Fact]
    public void NullOptionsCrossAsNull()
    {
        var stream = new MemoryStream();
        EngineProcessProtocol.WriteDumpRequest(new BinaryWriter(stream), new DumpOptions { ProcessId = 1, ImagePath = "/i" }, 2);
        stream.Position = 0;
        var read = Assert.IsType<DumpOptions>(EngineProcessProtocol.ReadRequest(new BinaryReader(stream), default, _ => { }));
        Assert.Null(read.ParentImage);
        Assert.Null(read.FreezeCgroup);
        Assert.Null(read.FailAt);
        Assert.Empty(read.IpcKeys);
    }

    [Fact]
    public void SomethingElseOnItsInputIsRefused()
    {
        var garbage = new MemoryStream("GET / HTTP/1.1\r\n"u8.ToArray());
        Assert.Throws<InvalidDataException>(() => EngineProcessProtocol.ReadRequest(new BinaryReader(garbage), default, _ => { }));
    }

    [Fact]
    public void EveryOptionOfARestoreCrosses()
    {
        // As for a checkpoint: each public option set by reflection to something other than its default. The host
        // crosses as the request's own argument (the session starts it), the root's PID comes back as an event.
        string[] notCarried = [nameof(RestoreOptions.PageServer), nameof(RestoreOptions.Cancellation), nameof(RestoreOptions.HostProcessId), nameof(RestoreOptions.RootCreated)];
        var options = new RestoreOptions { ImagePath = "/images/app" };
        var properties = SetUnusual(options, notCarried);
        var stream = new MemoryStream();
        EngineProcessProtocol.WriteRestoreRequest(new BinaryWriter(stream), options, hostProcessId: 313);
        stream.Position = 0;
        using var cancellation = new CancellationTokenSource();
        var created = new List<int>();
        var read = Assert.IsType<RestoreOptions>(EngineProcessProtocol.ReadRequest(new BinaryReader(stream), cancellation.Token, created.Add));
        AssertSame(properties, options, read);
        Assert.Equal(313, read.HostProcessId);
        Assert.Equal(cancellation.Token, read.Cancellation);
        read.RootCreated!(4242);
        Assert.Equal([4242], created);
        Assert.Equal(stream.Length, stream.Position);
    }

    [Fact]
    public void MissingRestoreOptionsCrossAsMissing()
    {
        var stream = new MemoryStream();
        EngineProcessProtocol.WriteRestoreRequest(new BinaryWriter(stream), new RestoreOptions { ImagePath = "/i" }, 1);
        stream.Position = 0;
        var read = Assert.IsType<RestoreOptions>(EngineProcessProtocol.ReadRequest(new BinaryReader(stream), default, _ => { }));
        Assert.Null(read.NetworkNamespace);
        Assert.Null(read.ExternalVeth);
        Assert.Null(read.ExternalMounts);
        Assert.Null(read.FailAt);
        Assert.Null(read.LogPath);
        Assert.Equal(CgroupMode.Soft, read.CgroupMode);
    }

    [Fact]
    public void TheEngineAnswersARestoreOfNoImageWithItsFailure()
    {
        var request = new MemoryStream();
        var missing = Path.Combine(Path.GetTempPath(), $"criups-no-image-{Guid.NewGuid():N}");
        EngineProcessProtocol.WriteRestoreRequest(new BinaryWriter(request), new RestoreOptions { ImagePath = missing }, hostProcessId: 0);
        using var input = new HeldOpenInput(request.ToArray());
        var output = new MemoryStream();
        Assert.Equal(1, EngineProcessServer.Serve(input, output));
        var events = new BinaryReader(new MemoryStream(output.ToArray()));
        while ((EngineProcessProtocol.EventKind)events.ReadByte() != EngineProcessProtocol.EventKind.Failed)
        {
            _ = events.ReadString(); // phases and details before the images are found missing
        }
        var failure = Assert.IsType<CheckpointException>(EngineProcessProtocol.ReadFailure(events));
        Assert.Contains(missing, failure.Message);
    }

    [Theory]
    [InlineData(1234)]
    [InlineData("/images/app")]
    [InlineData(null)]
    public void ACheckpointFailureComesBackAsItWasThrown(object? target)
    {
        var thrown = new CheckpointException(CheckpointErrorKind.ShellJobRequired, "Process 1234 is a shell job.", target, "Use -ShellJob.") { LogPath = "/images/app/dump.log" };
        var back = Assert.IsType<CheckpointException>(RoundTrip(thrown));
        Assert.Equal(thrown.Kind, back.Kind);
        Assert.Equal(thrown.Message, back.Message);
        Assert.Equal(target, back.Target);
        Assert.Equal(thrown.RecommendedAction, back.RecommendedAction);
        Assert.Equal(thrown.LogPath, back.LogPath);
    }

    [Fact]
    public void OtherFailuresComeBackByTheirMessageADenialAsADenial()
    {
        Assert.IsType<UnauthorizedAccessException>(RoundTrip(new UnauthorizedAccessException("Access to the path '/x' is denied.")));
        var other = Assert.IsType<InvalidOperationException>(RoundTrip(new FormatException("bad number")));
        Assert.Contains("FormatException: bad number", other.Message);
    }

    [Fact]
    public void TheEngineAnswersARequestForNoProcessWithItsFailure()
    {
        var request = new MemoryStream();
        EngineProcessProtocol.WriteDumpRequest(new BinaryWriter(request), new DumpOptions { ProcessId = int.MaxValue, ImagePath = Path.Combine(Path.GetTempPath(), "never") }, Environment.ProcessId);
        using var input = new HeldOpenInput(request.ToArray());
        var output = new MemoryStream();
        Assert.Equal(1, EngineProcessServer.Serve(input, output));
        var events = new BinaryReader(new MemoryStream(output.ToArray()));
        while ((EngineProcessProtocol.EventKind)events.ReadByte() != EngineProcessProtocol.EventKind.Failed)
        {
            _ = events.ReadString(); // phases and details before the check fails
        }
        var failure = Assert.IsType<CheckpointException>(EngineProcessProtocol.ReadFailure(events));
        Assert.Equal(CheckpointErrorKind.ProcessNotFound, failure.Kind);
        Assert.Equal(int.MaxValue, failure.Target);
    }

    [Fact]
    public void TheEngineAnswersSomethingElseWithAFailure()
    {
        var output = new MemoryStream();
        Assert.Equal(1, EngineProcessServer.Serve(new MemoryStream([1, 2, 3]), output));
        var events = new BinaryReader(new MemoryStream(output.ToArray()));
        Assert.Equal(EngineProcessProtocol.EventKind.Failed, (EngineProcessProtocol.EventKind)events.ReadByte());
        Assert.IsType<InvalidOperationException>(EngineProcessProtocol.ReadFailure(events));
    }

    private static Exception RoundTrip(Exception thrown)
    {
        var stream = new MemoryStream();
        EngineProcessProtocol.WriteFailure(new BinaryWriter(stream), thrown);
        stream.Position = 0;
        var reader = new BinaryReader(stream);
        Assert.Equal(EngineProcessProtocol.EventKind.Failed, (EngineProcessProtocol.EventKind)reader.ReadByte());
        var back = EngineProcessProtocol.ReadFailure(reader);
        Assert.Equal(stream.Length, stream.Position);
        return back;
    }

    // Sets every public option but those not carried to an unusual value; returns the options set.
    private static List<System.Reflection.PropertyInfo> SetUnusual(object options, string[] notCarried)
    {
        var properties = options.GetType().GetProperties().Where(p => p.SetMethod is { IsPublic: true } && !notCarried.Contains(p.Name)).ToList();
        foreach (var property in properties)
        {
            property.SetValue(options, Unusual(property.PropertyType, property.Name));
        }
        return properties;
    }

    private static void AssertSame(IEnumerable<System.Reflection.PropertyInfo> properties, object sent, object read)
    {
        foreach (var property in properties)
        {
            var expected = property.GetValue(sent);
            var actual = property.GetValue(read);
            switch (expected)
            {
                case IEnumerable<int> list:
                    Assert.Equal(list, (IEnumerable<int>)actual!);
                    break;
                case IReadOnlyDictionary<string, string> names:
                    Assert.Equal(names.OrderBy(n => n.Key), ((IReadOnlyDictionary<string, string>)actual!).OrderBy(n => n.Key));
                    break;
                default:
                    Assert.True(Equals(expected, actual), $"{property.Name}: {expected} sent, {actual} read");
                    break;
            }
        }
    }

    private static object Unusual(Type type, string name) => type switch
    {
        _ when type == typeof(bool) => true,
        _ when type == typeof(int) => 4242,
        _ when type == typeof(long) => 123456789L,
        _ when type == typeof(string) => $"/somewhere/{name}",
        _ when type == typeof(TimeSpan) => TimeSpan.FromMilliseconds(2500),
        _ when type == typeof(IReadOnlyList<int>) => new[] { 5, -6, 7 },
        _ when type == typeof(IReadOnlyDictionary<string, string>) => new Dictionary<string, string> { ["eth0"] = $"{name}0", ["/mnt/data"] = "/srv/data" },
        _ when type == typeof(CgroupMode) => CgroupMode.Full,
        _ => throw new InvalidOperationException($"{name} is a {type.Name}: give it an unusual value here, and carry it in the request"),
    };

    // The session's end of the engine's stdin: the request, then nothing until the operation is over (its end, once
    // disposed, would cancel a running one).
    private sealed class HeldOpenInput(byte[] request) : Stream
    {
        private readonly MemoryStream data = new(request);
        private readonly ManualResetEventSlim closed = new();

        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = data.Read(buffer, offset, count);
            if (n == 0)
            {
                closed.Wait();
            }
            return n;
        }

        protected override void Dispose(bool disposing)
        {
            closed.Set();
            base.Dispose(disposing);
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
