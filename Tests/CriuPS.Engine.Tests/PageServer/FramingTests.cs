using System.Buffers.Binary;
using CriuPS.Engine.PageServer;

namespace CriuPS.Engine.Tests.PageServer;

/// <summary>The page server protocol's frames: every message survives a round trip, and bad input fails cleanly.</summary>
public class FramingTests
{
    [Fact]
    public void EveryMessageRoundTrips()
    {
        var page = Enumerable.Range(0, 4096 * 3).Select(i => (byte)(i * 7)).ToArray();
        var stream = new MemoryStream();
        var frames = new FrameStream(stream);
        PageServerMessages.Send(frames, new Hello(PageServerMessages.Version, SessionPurpose.LazyPages, "run-id-ü"));
        PageServerMessages.Send(frames, new Welcome(1, "/srv/img/app"));
        PageServerMessages.Send(frames, new ErrorMessage(RefusalCode.WrongImage, "another checkpoint"));
        PageServerMessages.Send(frames, new FileBegin(7, "pages-1.img"));
        PageServerMessages.SendFileData(frames, 7, page);
        PageServerMessages.Send(frames, new FileEnd(7, (ulong)page.Length));
        PageServerMessages.SendEmpty(frames, FrameType.Commit);
        PageServerMessages.SendCommitted(frames, "/srv/img/app");
        PageServerMessages.Send(frames, new PageRequest(4242, 0x7f0000001000, 3));
        PageServerMessages.SendPageData(frames, 4242, 0x7f0000001000, page);
        PageServerMessages.SendDone(frames, 65536);
        PageServerMessages.SendEmpty(frames, FrameType.Goodbye);

        stream.Position = 0;
        var reader = new FrameStream(stream);
        Assert.Equal(new Hello(PageServerMessages.Version, SessionPurpose.LazyPages, "run-id-ü"), PageServerMessages.ReadHello(Next(reader)));
        Assert.Equal(new Welcome(1, "/srv/img/app"), PageServerMessages.ReadWelcome(Next(reader)));
        Assert.Equal(new ErrorMessage(RefusalCode.WrongImage, "another checkpoint"), PageServerMessages.ReadError(Next(reader)));
        Assert.Equal(new FileBegin(7, "pages-1.img"), PageServerMessages.ReadFileBegin(Next(reader)));
        var (file, data) = PageServerMessages.ReadFileData(Next(reader));
        Assert.Equal(7u, file);
        Assert.Equal(page, data.ToArray());
        Assert.Equal(new FileEnd(7, (ulong)page.Length), PageServerMessages.ReadFileEnd(Next(reader)));
        PageServerMessages.ReadEmpty(Next(reader), FrameType.Commit);
        Assert.Equal("/srv/img/app", PageServerMessages.ReadCommitted(Next(reader)));
        Assert.Equal(new PageRequest(4242, 0x7f0000001000, 3), PageServerMessages.ReadPageRequest(Next(reader)));
        var (pid, address, pages) = PageServerMessages.ReadPageData(Next(reader));
        Assert.Equal((4242u, 0x7f0000001000UL), (pid, address));
        Assert.Equal(page, pages.ToArray());
        Assert.Equal(65536UL, PageServerMessages.ReadDone(Next(reader)));
        PageServerMessages.ReadEmpty(Next(reader), FrameType.Goodbye);
        Assert.Null(reader.Read());
    }

    [Fact]
    public void LargeFramesFollowEachOtherThroughOneBuffer()
    {
        var big = new byte[4 << 20];
        big.AsSpan().Fill(0xAB);
        var stream = new MemoryStream();
        var frames = new FrameStream(stream);
        PageServerMessages.SendPageData(frames, 1, 0x1000, big);
        PageServerMessages.SendPageData(frames, 2, 0x2000, big.AsSpan(0, 4096));
        stream.Position = 0;
        var reader = new FrameStream(stream);
        Assert.Equal(big.Length, PageServerMessages.ReadPageData(Next(reader)).Data.Length);
        var (pid, address, data) = PageServerMessages.ReadPageData(Next(reader));
        Assert.Equal((2u, 0x2000UL, 4096), (pid, address, data.Length));
        Assert.True(data.Span.IndexOfAnyExcept((byte)0xAB) < 0);
    }

    [Fact]
    public void RefusesToWriteAFrameLargerThanTheProtocolAllows()
    {
        var frames = new FrameStream(new MemoryStream());
        Assert.Throws<ArgumentException>(() => PageServerMessages.SendFileData(frames, 1, new byte[FrameStream.MaxFrame]));
        Assert.Throws<ArgumentException>(() => PageServerMessages.Send(frames, new FileBegin(1, new string('x', FrameFieldWriter.MaxString + 1))));
    }

    public static TheoryData<string, byte[], string> BadStreams => new()
    {
        { "a header cut short", new byte[] { 5, 0 }, "inside a frame header (2 of 4 bytes)" },
        { "a body cut short", Frame(10, FrameType.Done, new byte[3]), "inside a frame (4 of 10 bytes)" },
        { "a zero length", new byte[] { 0, 0, 0, 0 }, "A frame of 0 bytes is not valid" },
        { "a huge length", new byte[] { 0xff, 0xff, 0xff, 0x7f, 1 }, "A frame of 2147483647 bytes is not valid" },
        { "an unknown type", Frame(1, (FrameType)99, Array.Empty<byte>()), "Unknown frame type 99" },
        { "a TLS client hello", new byte[] { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01 }, "started a TLS handshake" },
    };

    [Theory]
    [MemberData(nameof(BadStreams))]
    public void BadStreamsFailWithAProtocolError(string what, byte[] bytes, string message)
    {
        var error = Assert.Throws<ProtocolException>(() => new FrameStream(new MemoryStream(bytes)).Read());
        Assert.True(error.Message.Contains(message, StringComparison.Ordinal), $"{what}: {error.Message}");
    }

    public static TheoryData<string, byte[], string> BadFrames => new()
    {
        { "a Hello of another protocol", Frame(FrameType.Hello, "HTTP"u8.ToArray()), "not a CriuPS page server Hello" },
        { "a Hello for an unknown purpose", Frame(FrameType.Hello, [.. "CRPS"u8, 1, 0, 9, 0, 0]), "purpose 9" },
        { "a string longer than its frame", Frame(FrameType.Welcome, [1, 0, 200, 0, (byte)'a']), "too short for its fields" },
        { "a string that is not UTF-8", Frame(FrameType.Welcome, [1, 0, 2, 0, 0xC3, 0x28]), "not UTF-8" },
        { "a request too short", Frame(FrameType.PageRequest, [1, 2, 3]), "too short for its fields" },
        { "bytes after the fields", Frame(FrameType.Done, new byte[9]), "1 bytes more than its fields" },
    };

    [Theory]
    [MemberData(nameof(BadFrames))]
    public void BadFramesFailWithAProtocolError(string what, byte[] bytes, string message)
    {
        var frame = Next(new FrameStream(new MemoryStream(bytes)));
        var error = Assert.Throws<ProtocolException>(() => _ = frame.Type switch
        {
            FrameType.Hello => (object)PageServerMessages.ReadHello(frame),
            FrameType.Welcome => PageServerMessages.ReadWelcome(frame),
            FrameType.PageRequest => PageServerMessages.ReadPageRequest(frame),
            _ => PageServerMessages.ReadDone(frame),
        });
        Assert.True(error.Message.Contains(message, StringComparison.Ordinal), $"{what}: {error.Message}");
    }

    [Fact]
    public void AFrameOfAnotherTypeThanExpectedIsAProtocolError()
    {
        var stream = new MemoryStream();
        PageServerMessages.Send(new FrameStream(stream), new ErrorMessage(RefusalCode.NoImage, "no image"));
        stream.Position = 0;
        var error = Assert.Throws<ProtocolException>(() => PageServerMessages.ReadWelcome(Next(new FrameStream(stream))));
        Assert.Equal("Expected a Welcome frame, got Error.", error.Message);
    }

    [Theory]
    [InlineData("10.0.0.2:7000", "10.0.0.2", 7000)]
    [InlineData("[fd00::2]:7000", "fd00::2", 7000)]
    [InlineData("dest.example:65535", "dest.example", 65535)]
    public void ParsesAddresses(string text, string host, int port) =>
        Assert.Equal((host, port), PageServerEndpoint.ParseAddress(text));

    [Theory]
    [InlineData("10.0.0.2")]
    [InlineData(":7000")]
    [InlineData("host:0")]
    [InlineData("host:70000")]
    [InlineData("host:-1")]
    [InlineData("[fd00::2]x:7000")]
    public void RefusesAddressesThatAreNotHostAndPort(string text) =>
        Assert.Contains("is not a page server address", Assert.Throws<ArgumentException>(() => PageServerEndpoint.ParseAddress(text)).Message);

    private static Frame Next(FrameStream reader) => reader.Read() ?? throw new InvalidOperationException("the stream ended");

    private static byte[] Frame(FrameType type, byte[] payload) => Frame((uint)payload.Length + 1, type, payload);

    // A frame as it would arrive: a length (which may lie), the type, the payload.
    private static byte[] Frame(uint length, FrameType type, byte[] payload)
    {
        var bytes = new byte[5 + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, length);
        bytes[4] = (byte)type;
        payload.CopyTo(bytes, 5);
        return bytes;
    }
}
