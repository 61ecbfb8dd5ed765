using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using Tmds.Linux;

namespace CriuPS.Native.Ptrace;

/// <summary>
/// Ends the waiters of doorbells that a tracer gave up on once their tracee is no longer ours. Nothing in the kernel
/// wakes a waitid blocked on a tracee that is detached (measured on 6.18: neither PTRACE_DETACH, nor the end of the
/// tracing thread, which detaches its tracees, nor the tracee's death then wakes it); a signal does, and the
/// restarted waitid fails with ECHILD. The kernel tells no one when a tracer lets go, so such doorbells are looked
/// at every second while any is unrung, and the waiter of one whose tracee is traced by no thread of ours is sent
/// the runtime's activation signal. A child of ours is left alone: its waiter waits on as its parent's would and
/// ends when the child stops or exits.
/// </summary>
internal static class AbandonedWaits
{
    // CoreCLR's activation signal, which the runtime itself sends to threads to suspend them; its handler (SA_RESTART)
    // does nothing to a thread outside managed code. The runtime names it SIGRTMIN, the C library's, not the kernel's
    // (32): glibc keeps the first real-time signals for itself and says at run time which is the first it leaves
    // (__libc_current_sigrtmin, which Tmds.LibC's SIGRTMIN calls).
    private static readonly int ActivationSignal = LibC.SIGRTMIN;
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);
    private static readonly List<StopDoorbell> Watched = new();
    private static Timer? timer;

    /// <summary>Watches a doorbell whose wait passed its deadline, until it rings.</summary>
    public static void Watch(StopDoorbell doorbell)
    {
        lock (Watched)
        {
            if (!Watched.Contains(doorbell))
            {
                Watched.Add(doorbell);
            }
            timer ??= new Timer(_ => Look(), null, Interval, Interval);
        }
    }

    private static void Look()
    {
        lock (Watched)
        {
            Watched.RemoveAll(doorbell => doorbell.HasRung);
            foreach (var doorbell in Watched)
            {
                if (doorbell.WaiterTid is { } waiter && !IsOurs(doorbell.Tid) && KernelSigaction.IsHandled(ActivationSignal))
                {
                    Syscall.Raw(SystemCall.Tgkill, (ulong)Environment.ProcessId, (ulong)waiter, (ulong)ActivationSignal);
                }
            }
            if (Watched.Count == 0)
            {
                timer?.Dispose();
                timer = null;
            }
        }
    }

    // Traced by this process, or a child of it.
    private static bool IsOurs(int tid)
    {
        try
        {
            var status = ProcStatus.Read(tid);
            return status.TracerPid == Environment.ProcessId || status.PPid == Environment.ProcessId;
        }
        catch (IOException)
        {
            return false; // gone
        }
    }
}
