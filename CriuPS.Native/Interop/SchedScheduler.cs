namespace CriuPS.Native.Interop;

/// <summary>
/// sched_getscheduler(2), sched_getparam(2) and sched_setscheduler(2): a thread's scheduling policy and its static
/// priority, read and set from outside it.
/// </summary>
public static unsafe class SchedScheduler
{
    public static uint GetPolicy(int tid) => (uint)Syscall.Checked("sched_getscheduler", SystemCall.SchedGetscheduler, (ulong)tid);

    public static uint GetPriority(int tid)
    {
        int priority;
        Syscall.Checked("sched_getparam", SystemCall.SchedGetparam, (ulong)tid, (ulong)&priority);
        return (uint)priority;
    }

    public static void Set(int tid, uint policy, int priority) =>
        Syscall.Checked("sched_setscheduler", SystemCall.SchedSetscheduler, (ulong)tid, policy, (ulong)&priority);
}
