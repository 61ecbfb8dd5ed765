using CriuPS.Engine.Logging;
using CriuPS.Native.Interop;
using CriuPS.Native.Ptrace;

namespace CriuPS.Engine.Lazy;

/// <summary>
/// Ties a lazily restored process to the thread that serves its pages: that thread seizes it with
/// PTRACE_O_EXITKILL, so that if our process dies in any way (even SIGKILL), the kernel kills the restored process
/// instead of letting it run on without a userfaultfd and read zeros where its memory should be. The process runs
/// as before: the signals it receives stop it for us a moment and are passed on at once (the fault loop looks every
/// few milliseconds), and its group stops are kept. It is released (detached) when every page is in.
/// </summary>
internal sealed class ExitKillGuard
{
    private readonly Tracee tracee;

    private ExitKillGuard(Tracee tracee) => this.tracee = tracee;

    public int ProcessId => tracee.ProcessId;

    /// <summary>Seizes <paramref name="pid"/> from the calling thread, which must outlive the transfer; null if it is gone.</summary>
    public static ExitKillGuard? Attach(int pid, EngineLog log)
    {
        try
        {
            return new ExitKillGuard(Tracee.Seize(pid, pid, PtraceOptions.ExitKill));
        }
        catch (NativeException e) when (e.Errno == Errno.ESRCH)
        {
            log.Write($"process {pid} ended before its lazy restore could guard it");
            return null;
        }
    }

    /// <summary>Passes on what stopped the process since the last look: signals, group stops.</summary>
    public void PassOnStops()
    {
        try
        {
            while (tracee.PollStop() is { } stop)
            {
                if (stop.Event == PtraceEvent.None)
                {
                    tracee.Continue(stop.StopSignal); // a signal on its way to the process
                }
                else if (stop.Event == PtraceEvent.Stop && (stop.StopSignal & 0x7f) is Signals.SIGSTOP or Signals.SIGTSTP or Signals.SIGTTIN or Signals.SIGTTOU)
                {
                    tracee.Listen(); // stopped by job control: stays stopped, as it would untraced
                }
                else
                {
                    tracee.Continue();
                }
            }
        }
        catch (Exception e) when (e is TraceeGoneException or NativeException { Errno: Errno.ESRCH })
        {
            // ended; its exit is for its parent to collect
        }
    }

    /// <summary>Detaches, leaving the process running (or stopped, if job control stopped it).</summary>
    public void Release()
    {
        try
        {
            tracee.InterruptAndWait();
            tracee.Detach();
        }
        catch (Exception e) when (e is TraceeGoneException or NativeException { Errno: Errno.ESRCH })
        {
            // ended meanwhile
        }
    }
}
