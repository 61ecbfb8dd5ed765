using CriuPS.Native.Interop;

namespace CriuPS.Engine.Support;

/// <summary>Reads (never sets) our own PR_TIMER_CREATE_RESTORE_IDS mode.</summary>
internal sealed class TimerIdRestoreProbe : FeatureProbe
{
    public override string Name => "TimerIdRestore";

    public override bool Essential => false;

    public override string Requirement => "prctl(PR_TIMER_CREATE_RESTORE_IDS) (Linux 6.17+)";

    public override string Impact => "Processes with POSIX timers (timer_create) cannot be restored: their timers would get other ids.";

    public override (bool, string) Check()
    {
        long mode = Prctl.TimerCreateRestoreIds();
        return mode >= 0
            ? (true, $"prctl(PR_TIMER_CREATE_RESTORE_IDS, GET) answers {mode}")
            : (false, $"prctl(PR_TIMER_CREATE_RESTORE_IDS, GET) failed: {Errno.Describe((int)-mode)} (kernel {KernelFacts.Release})");
    }
}
