using CriuPS.Native.Interop;

namespace CriuPS.Native.Ptrace;

/// <summary>
/// Rings when a tracee has a stop or an exit to report: a waiter thread blocks in waitid(P_PID, tid, WSTOPPED |
/// WEXITED | WNOWAIT | __WALL), which any thread of the tracer's thread group may call for its tracees, and which
/// reports without collecting. The tracer waits on the ring with its deadline and then collects (or reads) the status
/// on its own thread, so the status has one reader and the ring carries nothing that could go stale.
/// A doorbell left unrung when its waiter gives up (a thread in state D that does not stop in time) ends when the
/// tracee stops or exits while traced, or (<see cref="AbandonedWaits"/>) once it is no longer ours.
/// Keep one per tracee and reuse it: a new one would block beside the old.
/// </summary>
internal sealed class StopDoorbell
{
    private readonly ManualResetEventSlim rung = new();
    private int waiterTid;

    private StopDoorbell(int tid) => Tid = tid;

    /// <summary>The tracee watched.</summary>
    public int Tid { get; }

    /// <summary>The kernel's id of the thread blocked in waitid, once it runs.</summary>
    public int? WaiterTid => Volatile.Read(ref waiterTid) is var waiter and not 0 ? waiter : null;

    public bool HasRung => rung.IsSet;

    /// <summary>Starts watching thread <paramref name="tid"/>: rings at its next reportable stop or exit.</summary>
    public static StopDoorbell Arm(int tid)
    {
        var doorbell = new StopDoorbell(tid);
        WaiterThreads.Run(() =>
        {
            Volatile.Write(ref doorbell.waiterTid, (int)Syscall.Raw(SystemCall.Gettid));
            try
            {
                StopWatcher.Peek(tid, block: true);
            }
            catch (NativeException)
            {
                // the tracer looks itself once rung and meets the same error there
            }
            doorbell.rung.Set();
        });
        return doorbell;
    }

    /// <summary>
    /// The status <paramref name="collect"/> finds for thread <paramref name="tid"/>, asked at once and again after
    /// each ring of <paramref name="doorbell"/> (armed here when it is missing or has rung, and kept by the caller
    /// between waits); null once <paramref name="deadline"/> (Environment.TickCount64) passed without one. The one
    /// loop for both ways of collecting: wait4 for our own tracee, waitid(WNOWAIT) for one whose statuses the runtime
    /// may take.
    /// </summary>
    public static WaitStatus? CollectOrWait(int tid, Func<int, WaitStatus?> collect, long deadline, ref StopDoorbell? doorbell)
    {
        while (true)
        {
            if (doorbell is null or { HasRung: true })
            {
                doorbell = null;
                if (collect(tid) is { } status)
                {
                    return status;
                }
                doorbell = Arm(tid);
            }
            if (!doorbell.WaitRung(deadline))
            {
                return null;
            }
        }
    }

    /// <summary>Waits for the ring until <paramref name="deadline"/> (Environment.TickCount64); false when it passed first.</summary>
    public bool WaitRung(long deadline)
    {
        if (deadline == long.MaxValue)
        {
            rung.Wait();
            return true;
        }
        long left = deadline - Environment.TickCount64;
        if (left > 0 && rung.Wait(TimeSpan.FromMilliseconds(left)) || rung.IsSet)
        {
            return true;
        }
        AbandonedWaits.Watch(this); // the caller may give up on the tracee now
        return false;
    }
}
