using CriuPS.Native.Arch;
using CriuPS.Native.Arch.X86_64;
using CriuPS.Native.Diagnostics;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Ptrace;
using Tmds.Linux;

namespace CriuPS.Native.RemoteSyscall;

/// <summary>
/// Runs system calls inside a stopped thread of another process: load the registers, let the thread execute a
/// `syscall` instruction, stop it again and read rax. This is the one injection primitive of both dump and
/// restore. It works two ways:
/// - in a process of our own making (a restore), the thread runs our `syscall; int3` and stops at the trap;
/// - in a process we must not harm (a dump), the thread is a <see cref="ParkedThread"/> and never executes anything
///   that it could not leave on its own if we died: each call replaces, at its syscall-entry stop, the rt_sigreturn
///   of the process's own signal restorer, and returns there; our code in the scratch area ends with a stop that a
///   thread without a tracer simply goes through (a signal that it ignores, or a no-op system call), then with the
///   same rt_sigreturn. Dead or alive, we leave the thread where its next step is to become itself again.
/// </summary>
public sealed class RemoteSyscaller
{
    private static readonly IArchitecture Arch = IArchitecture.Current;

    private readonly Tracee thread;
    private readonly UserRegs legacyTemplate;
    private readonly ParkedThread? parked;
    private readonly int? stopSignal;
    private readonly ulong? heldWhileRunning;
    private Address instruction;
    private bool instructionIsOurs;

    /// <param name="thread">A stopped thread.</param>
    /// <param name="syscallInstruction">Address of a `syscall` instruction in the target.</param>
    /// <param name="followedByTrap">Whether an int3 follows it (our own code), so that the thread stops by itself.</param>
    public RemoteSyscaller(Tracee thread, Address syscallInstruction, bool followedByTrap)
    {
        this.thread = thread;
        OriginalRegs = thread.GetRegs();
        legacyTemplate = OriginalRegs;
        instruction = syscallInstruction;
        instructionIsOurs = followedByTrap;
    }

    /// <summary>
    /// A caller for a parked thread. <paramref name="stopSignal"/> is a signal the process neither catches nor has
    /// pending, which therefore does nothing untraced: our code stops with it; without one (every such signal
    /// caught), it stops at a no-op system call, with a stop at each call of the code instead of one for all.
    /// </summary>
    /// <param name="heldWhileRunning">
    /// The signal mask to run our code with, for a thread whose mask is its own between calls (in a process that was
    /// stopped, a thread left by our death stays stopped without running its way back: its mask must be its own).
    /// Null when the thread's mask is held for the whole session.
    /// </param>
    /// <param name="processLevels">The process's PIDs from ours down to its own (NSpid), when known: another
    /// thread's caller of the same process passes its own, which saves reading them once per thread.</param>
    public RemoteSyscaller(ParkedThread parked, int? stopSignal, ulong? heldWhileRunning, int[]? processLevels = null)
    {
        thread = parked.Thread;
        this.parked = parked;
        this.stopSignal = stopSignal;
        this.heldWhileRunning = heldWhileRunning;
        OriginalRegs = parked.OriginalRegs;
        instruction = parked.RestorerSyscall;
        // Our code signals the thread from inside, where a process in a PID namespace below ours has other ids. In
        // ours (one level) they are the ones we see, and the thread's status need not be read (64 threads: 64 reads).
        ProcessLevels = processLevels ?? Proc.ProcStatus.Read(thread.ProcessId).NamespacePids;
        ownIds = ProcessLevels.Length == 1
            ? (thread.ProcessId, thread.Tid)
            : (ProcessLevels[^1], Proc.ProcStatus.ReadThread(thread.ProcessId, thread.Tid).NamespacePids[^1]);
    }

    // The thread's process and thread ids as it sees them (NSpid's last), for the code it runs.
    private readonly (int Process, int Thread) ownIds;

    /// <summary>For a caller in a parked thread: its process's PIDs from ours down to its own (NSpid).</summary>
    public int[] ProcessLevels { get; } = [];

    public Tracee Thread => thread;

    // The registers every injected call starts from: the thread's own (a parked thread's, at its return point).
    private UserRegs Template => parked?.Parked ?? legacyTemplate;

    /// <summary>Whether this caller works in a parked thread (a dump) rather than a process of ours.</summary>
    public bool IsGuarded => parked is not null;

    /// <summary>The registers the thread had before the first injected call.</summary>
    public UserRegs OriginalRegs { get; }

    /// <summary>Number of calls run so far (for logs and benchmarks).</summary>
    public int CallCount { get; private set; }

    /// <summary>The new process or thread id reported by a fork/clone event during the last call, if any.</summary>
    public int? LastCreatedChild { get; private set; }

    /// <summary>Switches to our own `syscall; int3` code once it is in place (not for a parked thread, which never runs it).</summary>
    public void UseOwnCode(Address code)
    {
        if (parked is not null)
        {
            throw new InvalidOperationException("a parked thread makes its calls through its signal restorer");
        }
        instruction = code;
        instructionIsOurs = true;
    }

    /// <summary>Runs a call and returns its raw result (negative errno on failure).</summary>
    public long Call(SystemCall number, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0, ulong a4 = 0, ulong a5 = 0, ulong a6 = 0) =>
        parked is not null ? RunThroughRestorer(number, a1, a2, a3, a4, a5, a6, parked.ReturnPoint)
            : Run(number, a1, a2, a3, a4, a5, a6, stopAtSyscallExit: !instructionIsOurs);

    /// <summary>Runs a call and throws a <see cref="NativeException"/> describing <paramref name="what"/> on failure.</summary>
    public long Checked(string what, SystemCall number, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0, ulong a4 = 0, ulong a5 = 0, ulong a6 = 0)
    {
        long result = Call(number, a1, a2, a3, a4, a5, a6);
        if (result < 0 && result > -4096)
        {
            throw new NativeException($"{what} in {thread.ProcessId}", (int)-result);
        }
        return result;
    }

    /// <summary>Runs a typed call and returns its raw result (negative errno on failure).</summary>
    public long Call(RemoteCall call) => Call(call.Number, call.A1, call.A2, call.A3, call.A4, call.A5, call.A6);

    /// <summary>Runs a typed call and throws a <see cref="NativeException"/> describing <paramref name="what"/> on failure.</summary>
    public long Checked(string what, RemoteCall call) => Checked(what, call.Number, call.A1, call.A2, call.A3, call.A4, call.A5, call.A6);

    /// <summary>Runs a typed call and returns its result as its type (a descriptor, an address), or throws as <see cref="Checked(string, RemoteCall)"/>.</summary>
    public TResult Checked<TResult>(string what, RemoteCall<TResult> call) => call.Result(Checked(what, call.Call));

    /// <summary>
    /// Runs calls that wait (a sleep, a poll, a futex wait), each in its own thread (its caller), and interrupts them
    /// as soon as they have begun, as a stop of the thread would: a call that keeps its deadline in the kernel's
    /// restart block leaves that block in the thread and returns -ERESTART_RESTARTBLOCK, so that restart_syscall, run
    /// next by this thread, waits out the rest; a call that had nothing to wait for returns its result. Only in a
    /// process of ours (a restore), as each thread's last call: any rt_sigreturn before its restart_syscall would drop
    /// the block. Every thread is let into its call before the first is waited for, and every one interrupted before
    /// the first interrupt is waited for, so that the threads of a process wait for the scheduler side by side (64
    /// threads resumed into their sleeps one after the other took 13 ms of a restore here). Returns the calls' results
    /// in order; the threads are left stopped.
    /// </summary>
    public static long[] CallInterruptedTogether(IReadOnlyList<(RemoteSyscaller Caller, RemoteCall Call)> calls)
    {
        foreach (var (caller, call) in calls)
        {
            caller.StartInterruptedCall(call);
        }
        foreach (var (caller, call) in calls)
        {
            caller.LetIntoCall(call.Number);
        }
        foreach (var (caller, _) in calls)
        {
            Interop.Ptrace.Interrupt(caller.thread.Tid);
        }
        var results = new long[calls.Count];
        for (int i = 0; i < calls.Count; i++)
        {
            results[i] = calls[i].Caller.TakeInterruptedResult(calls[i].Call.Number);
        }
        return results;
    }

    // The call in place, and the thread on its way to the call's entry stop.
    private void StartInterruptedCall(RemoteCall call)
    {
        if (parked is not null || !instructionIsOurs)
        {
            throw new InvalidOperationException("a call is interrupted only in a process of ours, once its scratch area is in place");
        }
        thread.SetRegs(CallRegs(call.Number, call.A1, call.A2, call.A3, call.A4, call.A5, call.A6));
        CallCount++;
        thread.ContinueToSyscall();
    }

    // In the call at its entry stop, then let go into it, to be interrupted there: the interrupt makes it return.
    private void LetIntoCall(SystemCall number)
    {
        int notifications = 0;
        while (thread.WaitStop() is var entry && !entry.IsSyscallStop)
        {
            if (!IsNotification(entry, ref notifications))
            {
                throw new InvalidOperationException($"injected {number} in {thread} stopped unexpectedly before it ran: {entry}");
            }
            thread.ContinueToSyscall();
        }
        thread.Continue();
    }

    // The call ended and the thread ran the int3 after it as the interrupt came: the kernel takes the interrupt's stop
    // before a queued signal, so the int3's SIGTRAP waits behind that stop, and would kill the process once let go
    // (1 restore in 30 of 64 threads in 1 ms sleeps, whose calls ended while the others were let into theirs). It is
    // taken and dropped, and the thread stopped again by an interrupt, before it runs anything.
    private void DropQueuedTrap(SystemCall number)
    {
        thread.Continue();
        var trap = thread.WaitStop();
        if (trap.Event != PtraceEvent.None || trap.StopSignal != Signals.SIGTRAP)
        {
            throw new InvalidOperationException($"injected {number} in {thread} stopped unexpectedly after its int3: {trap}");
        }
        Interop.Ptrace.Interrupt(thread.Tid);
        thread.Continue();
        thread.WaitForInterruptStop();
    }

    // The stop the interrupt brought: the call's result.
    private long TakeInterruptedResult(SystemCall number)
    {
        while (true)
        {
            var status = thread.WaitStop();
            if (status.Event == PtraceEvent.Stop)
            {
                var regs = thread.GetRegs();
                if (Arch.InstructionPointerOf(regs) == TrapStop.Value)
                {
                    DropQueuedTrap(number);
                }
                return Arch.ResultOf(regs);
            }
            if (status.Event == PtraceEvent.None && status.StopSignal == Signals.SIGTRAP)
            {
                // The call ended before the interrupt came, at the int3 after it: rax is its result, and the
                // interrupt stops the thread as soon as it is let go (before it runs anything).
                long result = Arch.ResultOf(thread.GetRegs());
                thread.Continue();
                thread.WaitForInterruptStop();
                return result;
            }
            throw new InvalidOperationException($"injected {number} in {thread} stopped unexpectedly: {status}");
        }
    }

    /// <summary>
    /// Runs a call and leaves the thread in its syscall-exit stop, for the last call of a session (the one
    /// that unmaps our own code): the registers are replaced before the thread returns anywhere. A parked thread
    /// returns to the process's own restorer, outside the code that goes away, and is parked there from then on.
    /// </summary>
    public long CallAndStopAtExit(SystemCall number, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0, ulong a4 = 0, ulong a5 = 0, ulong a6 = 0)
    {
        if (parked is null)
        {
            return Run(number, a1, a2, a3, a4, a5, a6, stopAtSyscallExit: true);
        }
        long result = RunThroughRestorer(number, a1, a2, a3, a4, a5, a6, parked.Restorer);
        parked.ReturnStraightBack();
        return result;
    }

    /// <summary>
    /// Runs execve in a process of ours whose tracer asked for exec events (PTRACE_O_TRACEEXEC): returns 0 with the
    /// thread stopped at the exec event, in the new program before its first instruction, or the call's negative errno
    /// (the old program is then still there, stopped at our int3).
    /// </summary>
    public long CallExec(Address path, Address argv, Address envp)
    {
        if (parked is not null || !instructionIsOurs)
        {
            throw new InvalidOperationException("execve is injected only in a process of ours, once its scratch area is in place");
        }
        thread.SetRegs(CallRegs(SystemCall.Execve, path.Value, argv.Value, envp.Value, 0, 0, 0));
        CallCount++;
        thread.Continue();
        int notifications = 0;
        while (true)
        {
            var status = thread.WaitStop();
            if (status.Event == PtraceEvent.Exec)
            {
                return 0;
            }
            if (IsNotification(status, ref notifications))
            {
                thread.Continue();
                continue;
            }
            var regs = thread.GetRegs();
            if (status.Event == PtraceEvent.None && status.StopSignal == Signals.SIGTRAP && Arch.InstructionPointerOf(regs) == TrapStop.Value)
            {
                return Arch.ResultOf(regs);
            }
            throw new InvalidOperationException($"injected execve in {thread} stopped unexpectedly: {status} at 0x{Arch.InstructionPointerOf(regs):x}");
        }
    }

    /// <summary>
    /// The code that ends a piece of our code: a breakpoint in a process of ours; for a parked thread, the stop (the
    /// stop signal sent to itself, or a no-op tgkill), then the rt_sigreturn into its frame that a thread left alone
    /// runs on to.
    /// </summary>
    public byte[] EncodeEnd() => parked is null ? Arch.Breakpoint
        : Arch.EncodeStopThenReturn(ownIds.Process, ownIds.Thread, stopSignal ?? 0, parked.Frame.SigreturnStack.Value, parked.ReturnPoint.Value);

    /// <summary>
    /// Runs code of ours placed in the target (a <see cref="SyscallBatch"/>) from <paramref name="entry"/> until it
    /// stops in the code <see cref="EncodeEnd"/> made at <paramref name="end"/>; <paramref name="calls"/> counts the
    /// system calls it makes.
    /// </summary>
    public void RunCode(Address entry, Address end, int calls)
    {
        if (!instructionIsOurs && parked is null)
        {
            throw new InvalidOperationException("code can only run once the scratch area is in place");
        }
        PlaceCode(entry);
        ContinueCode(end, calls);
    }

    // The thread set to run our code from its entry.
    private void PlaceCode(Address entry)
    {
        thread.SetRegs(Arch.WithInstructionPointer(Arch.OutsideSyscall(Template), entry.Value));
        LastCreatedChild = null;
    }

    // Where a thread of a process of ours stops at the end made at `end`: past its breakpoint.
    private static Address PastBreakpoint(Address end) => end + new ByteCount((ulong)Arch.Breakpoint.Length);

    private static string CodeOf(int calls) => $"code of {calls} calls";

    /// <summary>Whether <see cref="RunCodeTogether"/> takes this thread: one of a process of ours, not a parked one.</summary>
    public bool RunsCodeTogether => parked is null && instructionIsOurs;

    /// <summary>
    /// <see cref="RunCode"/> in several threads of a process of ours at once, each with its own caller, code and end:
    /// every thread is let go before the first is waited for. Not for parked threads (a dump's), whose code runs with
    /// their signals held, one thread at a time.
    /// </summary>
    public static void RunCodeTogether(IReadOnlyList<(RemoteSyscaller Caller, Address Entry, Address End, int Calls)> runs)
    {
        foreach (var (caller, entry, _, calls) in runs)
        {
            if (!caller.RunsCodeTogether)
            {
                throw new InvalidOperationException($"code runs in several threads at once only in a process of ours, not in {caller.thread}");
            }
            caller.PlaceCode(entry);
            caller.CallCount += calls;
            caller.thread.Continue();
        }
        foreach (var (caller, _, end, calls) in runs)
        {
            caller.WaitAtTrap(CodeOf(calls), PastBreakpoint(end));
        }
    }

    /// <summary>
    /// Lets the thread run on in code of ours from where it stopped, to the end made at <paramref name="end"/>.
    /// </summary>
    public void ContinueCode(Address end, int calls)
    {
        CallCount += calls;
        string what = CodeOf(calls);
        if (parked is null)
        {
            RunToTrap(what, PastBreakpoint(end));
        }
        else
        {
            if (stopSignal is int signal)
            {
                WithSignalsHeld(() => RunToStopSignal(what, signal));
            }
            else
            {
                WithSignalsHeld(() => RunToNoOpExit(what, end + new ByteCount((ulong)Arch.StopExitOffset)));
            }
            // Parked again at once, as the code's last instructions would leave it (its stack on the frame, at its return
            // point): stopped inside the code, the thread would run on into it if we died, and the code goes away with
            // the injection area, which the leader unmaps while the other threads wait (a 16-thread process whose
            // tool died in that munmap was killed by the fault).
            thread.SetRegs(parked.Parked);
        }
    }

    // Runs a step of a parked thread with its signals held back, when they are not for the whole session.
    private T WithSignalsHeld<T>(Func<T> step)
    {
        if (heldWhileRunning is not ulong held)
        {
            return step();
        }
        Interop.Ptrace.SetSigMask(thread.Tid, held);
        try
        {
            return step();
        }
        finally
        {
            if (thread.IsAttached)
            {
                Interop.Ptrace.SetSigMask(thread.Tid, parked!.SignalMask);
            }
        }
    }

    private void WithSignalsHeld(Action step) => WithSignalsHeld(() =>
    {
        step();
        return 0;
    });

    /// <summary>
    /// A call in a parked thread that returns into code of ours at <paramref name="returnTo"/> instead of the restorer:
    /// code that undoes what the call made (<see cref="Injection.CallAndClose"/>), which the thread then runs whether
    /// we are there or not. The thread stops at the call's exit.
    /// </summary>
    public long CallReturningTo(Address returnTo, SystemCall number, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0, ulong a4 = 0, ulong a5 = 0, ulong a6 = 0)
    {
        if (parked is null)
        {
            throw new InvalidOperationException("only a parked thread returns into code of ours");
        }
        return RunThroughRestorer(number, a1, a2, a3, a4, a5, a6, returnTo);
    }

    /// <summary>A typed call in a parked thread that returns into code of ours (<see cref="CallReturningTo(Address, SystemCall, ulong, ulong, ulong, ulong, ulong, ulong)"/>).</summary>
    public long CallReturningTo(Address returnTo, RemoteCall call) => CallReturningTo(returnTo, call.Number, call.A1, call.A2, call.A3, call.A4, call.A5, call.A6);

    // The registers of a call made by running the system call instruction at `instruction`: its number and arguments
    // on the template, outside any call, so that the kernel does not "restart" ours.
    private UserRegs CallRegs(SystemCall number, ulong a1, ulong a2, ulong a3, ulong a4, ulong a5, ulong a6) =>
        Arch.WithInstructionPointer(Arch.OutsideSyscall(Arch.WithCall(Template, number, a1, a2, a3, a4, a5, a6)), instruction.Value);

    // Where the thread stops after the call made at `instruction`, our code's trap.
    private Address TrapStop => instruction + new ByteCount((ulong)Arch.TrapStopOffset);

    /// <summary>Puts back the registers the thread had before we started.</summary>
    public void RestoreOriginalRegisters()
    {
        var regs = OriginalRegs;
        thread.SetRegs(regs);
    }

    private long Run(SystemCall number, ulong a1, ulong a2, ulong a3, ulong a4, ulong a5, ulong a6, bool stopAtSyscallExit)
    {
        thread.SetRegs(CallRegs(number, a1, a2, a3, a4, a5, a6));
        LastCreatedChild = null;
        CallCount++;
        return stopAtSyscallExit ? RunToSyscallExit(number) : Arch.ResultOf(RunToTrap(number.ToString(), TrapStop));
    }

    // Continues the thread until it stops at the int3 that ends our code, with rip just past it.
    private UserRegs RunToTrap(string what, Address stopRip)
    {
        thread.Continue();
        return WaitAtTrap(what, stopRip);
    }

    // Waits until the thread, let go into code of ours, stops at its trap; its registers there.
    private UserRegs WaitAtTrap(string what, Address stopRip)
    {
        int notifications = 0;
        while (true)
        {
            var status = thread.WaitStop();
            if (IsChildCreationEvent(status))
            {
                LastCreatedChild = (int)thread.GetEventMessage();
                thread.Continue();
                continue;
            }
            if (IsNotification(status, ref notifications))
            {
                thread.Continue();
                continue;
            }
            var regs = thread.GetRegs();
            if (status.Event == PtraceEvent.None && status.StopSignal == Signals.SIGTRAP && Arch.InstructionPointerOf(regs) == stopRip.Value)
            {
                return regs;
            }
            throw new InvalidOperationException($"injected {what} in {thread} stopped unexpectedly: {status} at 0x{Arch.InstructionPointerOf(regs):x}");
        }
    }

    private long RunToSyscallExit(SystemCall number)
    {
        bool entered = false;
        int notifications = 0;
        thread.ContinueToSyscall();
        while (true)
        {
            var status = thread.WaitStop();
            if (IsChildCreationEvent(status) || IsNotification(status, ref notifications))
            {
                if (IsChildCreationEvent(status))
                {
                    LastCreatedChild = (int)thread.GetEventMessage();
                }
                thread.ContinueToSyscall();
                continue;
            }
            if (!status.IsSyscallStop)
            {
                var at = Arch.InstructionPointerOf(thread.GetRegs());
                throw new InvalidOperationException($"injected {number} in {thread} stopped unexpectedly: {status} at 0x{at:x}");
            }
            if (entered)
            {
                return Arch.ResultOf(thread.GetRegs());
            }
            entered = true;
            thread.ContinueToSyscall();
        }
    }

    /// <summary>
    /// A call in a parked thread: the thread is let go up to the rt_sigreturn it is parked before (the process's
    /// restorer, or the end of our code); at that syscall-entry stop the call takes its place, with
    /// <paramref name="returnTo"/> (the restorer, unless code of ours follows) as the place to return to; the thread
    /// stops again at the call's exit, parked once more.
    /// </summary>
    private long RunThroughRestorer(SystemCall number, ulong a1, ulong a2, ulong a3, ulong a4, ulong a5, ulong a6, Address returnTo) =>
        WithSignalsHeld(() => RunThroughRestorerHeld(number, a1, a2, a3, a4, a5, a6, returnTo));

    private long RunThroughRestorerHeld(SystemCall number, ulong a1, ulong a2, ulong a3, ulong a4, ulong a5, ulong a6, Address returnTo)
    {
        LastCreatedChild = null;
        CallCount++;
        WaitForSyscallStop(number.ToString(), entry: true);
        // The first system call on the way back (the rt_sigreturn, or the first undoing call before it): replaced by
        // ours, it does not happen.
        if (Arch.SyscallOf(thread.GetRegs()) != parked!.FirstSyscallOnTheWayBack)
        {
            throw new InvalidOperationException($"{thread} was not parked on its way back when {number} was to be injected");
        }
        thread.SetRegs(Arch.WithInstructionPointer(Arch.EnteringSyscall(Arch.WithCall(Template, number, a1, a2, a3, a4, a5, a6), number), returnTo.Value));
        WaitForSyscallStop(number.ToString(), entry: false);
        return Arch.ResultOf(thread.GetRegs());
    }

    // Resumes the thread to its next syscall stop, through the events and notifications a call may bring.
    private void WaitForSyscallStop(string what, bool entry) =>
        RunUntil(entry ? $"{what} (before it ran)" : what, syscallStops: true, entry ? null : DeathPoint.Call, status => status.IsSyscallStop ? true : null);

    // Our code runs until the thread sends itself the stop signal: that signal's delivery stop is ours.
    private void RunToStopSignal(string what, int signal) =>
        RunUntil(what, syscallStops: false, DeathPoint.Code, status => status.Event == PtraceEvent.None && status.StopSignal == signal && IsOwnSignal() ? true : null);

    // Without a stop signal our code ends with a no-op tgkill: the thread is run from syscall stop to syscall stop
    // until the exit of that one.
    private void RunToNoOpExit(string what, Address stopRip)
    {
        bool inSyscall = false;
        RunUntil(what, syscallStops: true, DeathPoint.Code, status =>
        {
            if (!status.IsSyscallStop)
            {
                return null;
            }
            if (inSyscall)
            {
                var regs = thread.GetRegs();
                if (Arch.InstructionPointerOf(regs) == stopRip.Value && Arch.SyscallOf(regs) == SystemCall.Tgkill)
                {
                    return true;
                }
            }
            inSyscall = !inSyscall;
            return false;
        });
    }

    /// <summary>
    /// Lets a parked thread run (stopping at every syscall entry and exit too, with <paramref name="syscallStops"/>)
    /// until <paramref name="awaited"/> says a stop is the one awaited (true) or one to go on from (false); any other
    /// stop (null) may be a child's creation, a notification or the stop signal sent from elsewhere (which an untraced
    /// thread ignores: suppressing it changes nothing), else it is unexpected.
    /// </summary>
    private void RunUntil(string what, bool syscallStops, string? deathPoint, Func<WaitStatus, bool?> awaited)
    {
        int notifications = 0;
        Resume(syscallStops);
        if (deathPoint is not null)
        {
            DeathPoint.Reach(deathPoint);
        }
        while (true)
        {
            var status = thread.WaitStop();
            if (IsChildCreationEvent(status))
            {
                LastCreatedChild = (int)thread.GetEventMessage();
            }
            else if (awaited(status) is bool done)
            {
                if (done)
                {
                    return;
                }
            }
            else if (!IsNotification(status, ref notifications) && !IsStrayStopSignal(status))
            {
                throw new InvalidOperationException($"injected {what} in {thread} stopped unexpectedly: {status} at 0x{Arch.InstructionPointerOf(thread.GetRegs()):x}");
            }
            Resume(syscallStops);
        }
    }

    private void Resume(bool syscallStops)
    {
        if (syscallStops)
        {
            thread.ContinueToSyscall();
        }
        else
        {
            thread.Continue();
        }
    }

    // The stop signal sent by the thread to itself (our code), not by another process.
    private bool IsOwnSignal()
    {
        var info = Interop.Ptrace.GetSigInfo(thread.Tid);
        int code = BitConverter.ToInt32(info, 8);
        int sender = BitConverter.ToInt32(info, 16);
        return code == LibC.SI_TKILL && sender == ownIds.Process;
    }

    // The stop signal sent by someone else: what an untraced thread would do with it is nothing, so it is dropped.
    private bool IsStrayStopSignal(WaitStatus status) =>
        stopSignal is int signal && status.Event == PtraceEvent.None && status.StopSignal == signal;

    /// <summary>
    /// A trap that only tells us something (a group stop that ended, or that is reported again before a stopped
    /// process runs our code, a pending interrupt): the call has not run yet, so the thread is simply resumed again.
    /// A few at most; more would mean it cannot run at all.
    /// </summary>
    private bool IsNotification(WaitStatus status, ref int count)
    {
        if (status.Event != PtraceEvent.Stop)
        {
            return false;
        }
        if (++count > 8)
        {
            throw new InvalidOperationException($"{thread} keeps stopping instead of running injected code");
        }
        return true;
    }

    private static bool IsChildCreationEvent(WaitStatus status) =>
        status.Event is PtraceEvent.Fork or PtraceEvent.VFork or PtraceEvent.Clone;
}
