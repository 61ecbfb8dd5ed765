using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Tests.Memory;

/// <summary>
/// The areas of a final dump: read ahead of the freeze, from maps in it, and confirmed on a thread of its own while the
/// dump goes on (the 1 GiB post-copy move in MoveProcess.Tests.ps1 checks its log for both; MemoryAreas.Tests.ps1 a
/// checkpoint whose flags change between the read ahead and the freeze).
/// </summary>
public class AreasReadAheadTests
{
    [Fact]
    public void TheAreasOfAQuietProcessComeFromMapsWithTheFlagsReadAheadAndAreConfirmed()
    {
        using var sleeper = TestProcess.StartSleeper();
        using var log = new EngineLog(new NullObserver());
        var ahead = AreasReadAhead.Read([sleeper.Pid]);
        var atFreeze = ahead.AtFreeze(sleeper.Pid, log);
        Assert.NotNull(atFreeze);
        var smaps = SmapsParser.Read(sleeper.Pid);
        Assert.Equal(smaps.Select(a => (a.Range, a.VmFlags.ToString())), atFreeze.Select(a => (a.Range, a.VmFlags.ToString())));
        ahead.StartConfirming([(sleeper.Pid, atFreeze)], log);
        ahead.Confirmed();
    }

    [Fact]
    public void FlagsThatAreNotThoseAtTheConfirmationFailTheDumpNamingTheArea()
    {
        using var sleeper = TestProcess.StartSleeper();
        using var log = new EngineLog(new NullObserver());
        var ahead = AreasReadAhead.Read([sleeper.Pid]);
        var atFreeze = ahead.AtFreeze(sleeper.Pid, log)!;
        // As if the flags had been read ahead before a madvise(MADV_DONTFORK) that came before the freeze.
        var stack = atFreeze.FindIndex(a => a.Path == "[stack]");
        atFreeze[stack] = atFreeze[stack] with { VmFlags = new VmFlagSet($"{atFreeze[stack].VmFlags} dc") };
        ahead.StartConfirming([(sleeper.Pid, atFreeze)], log);
        var error = Assert.Throws<CheckpointException>(ahead.Confirmed);
        Assert.Equal(CheckpointErrorKind.DumpFailed, error.Kind);
        Assert.Contains($"The checkpoint of process {sleeper.Pid} failed: its area {atFreeze[stack]} shows the flags", error.Message);
    }

    [Fact]
    public void AProcessWithoutAReadAheadIsLeftToSmapsAndNotConfirmed()
    {
        using var sleeper = TestProcess.StartSleeper();
        using var log = new EngineLog(new NullObserver());
        var ahead = AreasReadAhead.Read([]);
        Assert.Null(ahead.AtFreeze(sleeper.Pid, log));
        ahead.StartConfirming([(sleeper.Pid, SmapsParser.Read(sleeper.Pid))], log);
        ahead.Confirmed();
    }
}
