using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Tests.Memory;

/// <summary>
/// The areas of a background checkpoint's freeze: from maps with the VmFlags of smaps read ahead when the layout is
/// the same, smaps again when it is not, and confirmed after the freeze (bgflags in BackgroundCheckpoint.Tests.ps1
/// changes flags across a real freeze).
/// </summary>
public class VmFlagsAheadTests
{
    [Fact]
    public void AQuietProcessGetsMapsWithTheFlagsReadAheadAndTheyAreConfirmed()
    {
        using var sleeper = TestProcess.StartSleeper();
        using var log = new EngineLog(new NullObserver());
        var ahead = VmFlagsAhead.Read(sleeper.Pid);
        var atFreeze = ahead.AtFreeze(log);
        Assert.NotNull(atFreeze);
        Assert.True(ahead.Used);
        var smaps = SmapsParser.Read(sleeper.Pid);
        Assert.Equal(smaps.Count, atFreeze.Count);
        for (int i = 0; i < smaps.Count; i++)
        {
            Assert.True(smaps[i].IsSameArea(atFreeze[i]));
            Assert.Equal(smaps[i].VmFlags.ToString(), atFreeze[i].VmFlags.ToString());
        }
        ahead.Confirm(atFreeze, log);
    }

    [Fact]
    public void ALayoutChangedSinceTheReadAheadIsLeftToSmaps()
    {
        using var log = new EngineLog(new NullObserver());
        var ahead = VmFlagsAhead.Read(Environment.ProcessId);
        ulong area = Mmap.PrivateAnonymous(3 * 4096);
        try
        {
            Assert.Null(ahead.AtFreeze(log));
            Assert.False(ahead.Used);
        }
        finally
        {
            Mmap.Munmap(area, 3 * 4096);
        }
    }

    [Fact]
    public void AnAreaGoneAfterTheFreezeFailsTheConfirmation()
    {
        using var log = new EngineLog(new NullObserver());
        // Shared anonymous: an object of its own, never merged with a neighbour. Locked, so that it shows a flag
        // ("lo") that no mapping of the runtime has: other tests run beside this one in this process, and the
        // runtime may map its own memory (shared, for its executable code) at the address once it is freed.
        ulong area = Mmap.SharedAnonymous(3 * 4096);
        Syscall.Checked("mlock", SystemCall.Mlock, area, 3 * 4096);
        var ahead = VmFlagsAhead.Read(Environment.ProcessId);
        var atFreeze = SmapsParser.Read(Environment.ProcessId).Where(v => v.Start.Value == area).ToList();
        Assert.Single(atFreeze);
        Mmap.Munmap(area, 3 * 4096);
        // What the runtime may have mapped at the freed address meanwhile is not locked: it shows other flags.
        var error = Assert.Throws<CheckpointException>(() => ahead.Confirm(atFreeze, log));
        Assert.Equal(CheckpointErrorKind.DumpFailed, error.Kind);
        Assert.Matches($"its area {System.Text.RegularExpressions.Regex.Escape(atFreeze[0].ToString())} (is gone|shows the flags '[^']*' where it showed '[^']*\\blo\\b[^']*')", error.Message);
    }
}
