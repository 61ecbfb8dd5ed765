using CriuPS.Engine.EngineProcess;
using CriuPS.Engine.Model;
using Xunit;

namespace CriuPS.Engine.Tests.EngineProcess;

// The process criups-engine restored is the object an in-session restore returns: every property crosses.
public class RestoredProcessCodecTests
{
    // Not carried: a lazy restore's transfer (lazy restores run in the session), and what the session works out
    // itself (the exit status, which its reaper keeps; the PID again under another name).
    private static readonly string[] NotCarried =
        [nameof(RestoredProcess.LazyRestore), nameof(RestoredProcess.HasExited), nameof(RestoredProcess.ExitCode), nameof(RestoredProcess.HostPid)];

    [Fact]
    public void EveryPropertyOfTheRestoredProcessCrosses()
    {
        var restored = new RestoredProcess
        {
            Id = 40001,
            NamespacePid = 7,
            PidNamespaceInit = 40000,
            Name = "app",
            ImagePath = "/images/app",
            ParentId = 999,
            Detached = true,
            ThreadCount = 64,
            MemoryBytes = 1L << 33,
            RestoreTime = TimeSpan.FromMilliseconds(31.5),
            ReadTime = TimeSpan.FromMilliseconds(4.25),
            VerifyTime = TimeSpan.FromMilliseconds(2.125),
            MemoryTime = TimeSpan.FromMilliseconds(12.5),
            Cgroups = ["memory:/app", "v2:/system.slice/app.service"],
            LogPath = "/images/app/restore.log",
        };
        var properties = typeof(RestoredProcess).GetProperties().Where(p => !NotCarried.Contains(p.Name)).ToList();
        foreach (var property in properties)
        {
            var value = property.GetValue(restored);
            var empty = property.PropertyType.IsValueType ? Activator.CreateInstance(property.PropertyType) : null;
            Assert.True(value is not null && !Equals(value, empty), $"{property.Name} is left at its default in the sample: a property added later must be set here, and carried");
        }
        var back = RoundTrip(restored);
        foreach (var property in properties)
        {
            var expected = property.GetValue(restored);
            var actual = property.GetValue(back);
            if (expected is IReadOnlyList<string> list)
            {
                Assert.Equal(list, (IReadOnlyList<string>)actual!);
            }
            else
            {
                Assert.True(Equals(expected, actual), $"{property.Name}: {expected} sent, {actual} read");
            }
        }
    }

    [Fact]
    public void WhatARestoreMayLackCrossesAsMissing()
    {
        var back = RoundTrip(new RestoredProcess
        {
            Id = 5, NamespacePid = 5, Name = "a", ImagePath = "/i", ParentId = 1, Detached = false, ThreadCount = 1, MemoryBytes = 0,
            RestoreTime = TimeSpan.Zero, ReadTime = TimeSpan.Zero, VerifyTime = TimeSpan.Zero, MemoryTime = TimeSpan.Zero,
        });
        Assert.Null(back.PidNamespaceInit);
        Assert.Null(back.LogPath);
        Assert.Empty(back.Cgroups);
    }

    private static RestoredProcess RoundTrip(RestoredProcess restored)
    {
        var stream = new MemoryStream();
        RestoredProcessCodec.Write(new BinaryWriter(stream), restored);
        stream.Position = 0;
        var back = RestoredProcessCodec.Read(new BinaryReader(stream));
        Assert.Equal(stream.Length, stream.Position);
        return back;
    }
}
