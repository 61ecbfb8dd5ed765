using CriuPS.Native.Arch.X86_64;
using CriuPS.Native.Interop;

namespace CriuPS.Native.Ptrace;

/// <summary>
/// One thread under our ptrace control. ptrace binds a tracee to the tracing *thread*, so every method must be
/// called from the thread that seized it.
/// </summary>
public sealed class Tracee
{
    private Tracee(int tid, int processId, bool statusesMayBeStolen)
    {
        Tid = tid;
        ProcessId = processId;
        this.statusesMayBeStolen = statusesMayBeStolen;
    }

    // A child of our own process may have been started by System.Diagnostics.Process (Start-Process): the .NET
    // runtime then answers every SIGCHLD with waitpid(child, WNOHANG), which also collects ptrace stops of a
    // traced child. For such threads we cannot block in wait4 and must notice a stop that someone else collected.
    private readonly bool statusesMayBeStolen;

    // Rings when the thread has a stop to report; kept between waits (see StopDoorbell).
    private StopDoorbell? doorbell;

    public int Tid { get; }

    /// <summary>The thread group (process) this thread belongs to.</summary>
    public int ProcessId { get; }

    public bool IsStopped { get; private set; }

    /// <summary>Whether the thread was in a group stop (SIGSTOP, SIGTSTP...) when we stopped it.</summary>
    public bool WasGroupStopped { get; private set; }

    public WaitStatus LastStop { get; private set; }

    public bool IsAttached { get; private set; } = true;

    /// <summary>Attaches to a running thread without stopping it.</summary>
    public static Tracee Seize(int tid, int processId, PtraceOptions options)
    {
        Interop.Ptrace.Seize(tid, options);
        return new Tracee(tid, processId, IsOurChild(processId));
    }

    /// <summary>
    /// Attaches to another thread of the process that <paramref name="leader"/> (seized already) leads, without
    /// stopping it. Whose child the process is is the leader's answer: one /proc read less for each thread after the
    /// leader.
    /// </summary>
    public static Tracee SeizeSibling(int tid, Tracee leader, PtraceOptions options)
    {
        Interop.Ptrace.Seize(tid, options);
        return new Tracee(tid, leader.ProcessId, leader.statusesMayBeStolen);
    }

    private static bool IsOurChild(int pid)
    {
        try
        {
            return Proc.ProcStat.Read(pid).PPid == Environment.ProcessId;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Wraps a thread the kernel attached to us on its creation (PTRACE_O_TRACEFORK/TRACECLONE).</summary>
    public static Tracee Adopt(int tid, int processId) => new(tid, processId, statusesMayBeStolen: false);

    /// <summary>
    /// Stops a seized thread. A signal that arrives first is handed to the thread (as compel does), and we
    /// wait again for the interrupt stop.
    /// </summary>
    public void InterruptAndWait()
    {
        Interop.Ptrace.Interrupt(Tid);
        WaitForInterruptStop();
    }

    /// <summary>
    /// Stops a seized thread, giving up after <paramref name="timeout"/>: false when it did not stop, as a thread
    /// sleeping uninterruptibly in the kernel (state D) cannot until it wakes. Such a thread is left running, and
    /// the kernel detaches it when the tracing thread ends.
    /// </summary>
    public bool TryInterruptAndWait(TimeSpan timeout)
    {
        // Armed before the interrupt, the doorbell's waiter gets ready while the thread is on its way to the stop.
        if (doorbell is null or { HasRung: true })
        {
            doorbell = StopDoorbell.Arm(Tid);
        }
        Interrupt();
        return TryWaitForInterruptStop(timeout);
    }

    /// <summary>
    /// Asks a seized thread to stop (PTRACE_INTERRUPT) and returns at once; <see cref="TryWaitForInterruptStop"/> takes
    /// the stop. Threads interrupted one after the other, then waited for, stop side by side: the wait for the
    /// scheduler to run each into its stop is paid about once, not once per thread.
    /// </summary>
    public void Interrupt() => Interop.Ptrace.Interrupt(Tid);

    /// <summary>
    /// Waits for the stop of <see cref="Interrupt"/>, giving up after <paramref name="timeout"/> (false) as
    /// <see cref="TryInterruptAndWait"/> does. A stop that came already is taken without a waiter thread.
    /// </summary>
    public bool TryWaitForInterruptStop(TimeSpan timeout) => WaitForInterruptStop(Environment.TickCount64 + (long)timeout.TotalMilliseconds);

    /// <summary>Waits for the PTRACE_EVENT_STOP of a seize, an interrupt or a kernel auto-attach.</summary>
    public void WaitForInterruptStop() => WaitForInterruptStop(long.MaxValue);

    private bool WaitForInterruptStop(long deadline)
    {
        while (true)
        {
            if (WaitStop(deadline) is not { } status)
            {
                return false;
            }
            if (status.Event == PtraceEvent.Stop)
            {
                int signal = status.StopSignal & 0x7f;
                WasGroupStopped = signal is Signals.SIGSTOP or Signals.SIGTSTP or Signals.SIGTTIN or Signals.SIGTTOU;
                return true;
            }
            // A signal-delivery stop: let the thread take the signal, the pending interrupt stops it next.
            Continue(status.Event == PtraceEvent.None ? status.StopSignal : 0);
        }
    }

    /// <summary>Waits for the next stop of this thread; throws <see cref="TraceeGoneException"/> if it ended.</summary>
    public WaitStatus WaitStop() => WaitStop(long.MaxValue)!.Value;

    // The next stop, or null once the deadline (Environment.TickCount64) has passed.
    private WaitStatus? WaitStop(long deadline)
    {
        WaitStatus status;
        try
        {
            var next = statusesMayBeStolen ? StopWatcher.Wait(Tid, ProcessId, deadline, ref doorbell) : WaitOwnTracee(deadline);
            if (next is null)
            {
                return null;
            }
            status = next.Value;
        }
        catch (NativeException e) when (e.Errno == Errno.ECHILD)
        {
            status = new WaitStatus(Tid, Signals.SIGKILL); // reaped by its parent: it is gone
        }
        if (status.IsGone)
        {
            IsStopped = false;
            IsAttached = false;
            throw new TraceeGoneException(Tid, status);
        }
        IsStopped = true;
        LastStop = status;
        return status;
    }

    /// <summary>
    /// The stop this thread is in now, if any, without waiting: for a tracee that runs on its own while we watch it.
    /// An exit is not reported here (it stays for the parent to reap); ECHILD means the thread is gone.
    /// </summary>
    public WaitStatus? PollStop()
    {
        WaitStatus? status;
        try
        {
            status = StopWatcher.Poll(Tid);
        }
        catch (NativeException e) when (e.Errno == Errno.ECHILD)
        {
            IsAttached = false;
            throw new TraceeGoneException(Tid, new WaitStatus(Tid, Signals.SIGKILL));
        }
        if (status is { } stop)
        {
            IsStopped = true;
            LastStop = stop;
        }
        return status;
    }

    /// <summary>Lets a thread that reported a group stop stay stopped, as it would untraced (PTRACE_LISTEN).</summary>
    public void Listen()
    {
        Interop.Ptrace.Listen(Tid);
        IsStopped = false;
    }

    // Blocks in wait4 when there is no deadline; otherwise waits for the doorbell with the deadline, then collects.
    private WaitStatus? WaitOwnTracee(long deadline)
    {
        if (deadline == long.MaxValue && doorbell is null)
        {
            return Wait4.Wait(Tid, Wait4.WALL);
        }
        return StopDoorbell.CollectOrWait(Tid, static tid => Wait4.Wait(tid, Wait4.WALL | Wait4.WNOHANG), deadline, ref doorbell);
    }

    public void Continue(int signal = 0)
    {
        Interop.Ptrace.Cont(Tid, signal);
        IsStopped = false;
    }

    /// <summary>Resumes until the next syscall entry or exit (PTRACE_SYSCALL).</summary>
    public void ContinueToSyscall()
    {
        Interop.Ptrace.SyscallStep(Tid);
        IsStopped = false;
    }

    public void Detach(int signal = 0)
    {
        Interop.Ptrace.Detach(Tid, signal);
        IsStopped = false;
        IsAttached = false;
    }

    /// <summary>The message of the current ptrace event stop (the new child's pid for fork/clone events).</summary>
    public ulong GetEventMessage() => Interop.Ptrace.GetEventMessage(Tid);

    public UserRegs GetRegs() => Interop.Ptrace.GetRegs(Tid);

    public void SetRegs(in UserRegs regs) => Interop.Ptrace.SetRegs(Tid, regs);

    public byte[] GetXState()
    {
        var buffer = new byte[XStateLayout.Current.BufferSize];
        int size = Interop.Ptrace.GetRegSet(Tid, RegsetType.X86XState, buffer);
        return buffer[..size];
    }

    public void SetXState(ReadOnlySpan<byte> xstate) => Interop.Ptrace.SetRegSet(Tid, RegsetType.X86XState, xstate);

    public override string ToString() => $"thread {Tid} of {ProcessId}";
}
