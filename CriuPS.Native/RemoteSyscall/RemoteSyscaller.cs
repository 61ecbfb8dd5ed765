using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Ptrace;

namespace CriuPS.Native.RemoteSyscall;

/// <summary>
/// Runs system calls inside a stopped thread of another process: load the registers, let the thread execute a
/// `syscall` instruction, stop it again and read rax. This is the one injection primitive of both dump and
/// restore.
/// </summary>
public sealed class RemoteSyscaller
{
    private const ulong NoSyscall = ulong.MaxValue; // orig_rax = -1: the kernel must not "restart" our call

    private readonly Tracee thread;
    private readonly UserRegs template;
    private Address instruction;
    private bool instructionIsOurs;

    /// <param name="thread">A stopped thread.</param>
    /// <param name="syscallInstruction">Address of a `syscall` instruction in the target.</param>
    /// <param name="followedByTrap">Whether an int3 follows it (our own code), so that the thread stops by itself.</param>
    public RemoteSyscaller(Tracee thread, Address syscallInstruction, bool followedByTrap)
    {
        this.thread = thread;
        OriginalRegs = thread.GetRegs();
        template = OriginalRegs;
        instruction = syscallInstruction;
        instructionIsOurs = followedByTrap;
    }

    public Tracee Thread => thread;

    /// <summary>The registers the thread had before the first injected call.</summary>
    public UserRegs OriginalRegs { get; }

    /// <summary>Number of calls run so far (for logs and benchmarks).</summary>
    public int CallCount { get; private set; }

    /// <summary>The new process or thread id reported by a fork/clone event during the last call, if any.</summary>
    public int? LastCreatedChild { get; private set; }

    /// <summary>Switches to our own `syscall; int3` code once it is in place.</summary>
    public void UseOwnCode(Address code)
    {
        instruction = code;
        instructionIsOurs = true;
    }

    /// <summary>Runs a call and returns its raw result (negative errno on failure).</summary>
    public long Call(SyscallNumber number, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0, ulong a4 = 0, ulong a5 = 0, ulong a6 = 0) =>
        Run(number, a1, a2, a3, a4, a5, a6, stopAtSyscallExit: !instructionIsOurs);

    /// <summary>Runs a call and throws a <see cref="NativeException"/> describing <paramref name="what"/> on failure.</summary>
    public long Checked(string what, SyscallNumber number, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0, ulong a4 = 0, ulong a5 = 0, ulong a6 = 0)
    {
        long result = Call(number, a1, a2, a3, a4, a5, a6);
        if (result < 0 && result > -4096)
        {
            throw new NativeException($"{what} in {thread.ProcessId}", (int)-result);
        }
        return result;
    }

    /// <summary>
    /// Runs a call and leaves the thread in its syscall-exit stop, for the last call of a session (the one
    /// that unmaps our own code): the registers are replaced before the thread returns anywhere.
    /// </summary>
    public long CallAndStopAtExit(SyscallNumber number, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0, ulong a4 = 0, ulong a5 = 0, ulong a6 = 0) =>
        Run(number, a1, a2, a3, a4, a5, a6, stopAtSyscallExit: true);

    /// <summary>
    /// Runs code of ours placed in the target (a <see cref="SyscallBatch"/>) from <paramref name="entry"/> until it
    /// stops at the int3 at <paramref name="trap"/>; <paramref name="calls"/> counts the system calls it makes.
    /// </summary>
    public void RunCode(Address entry, Address trap, int calls)
    {
        if (!instructionIsOurs)
        {
            throw new InvalidOperationException("code can only run once the scratch area is in place");
        }
        var regs = template;
        regs.OrigRax = NoSyscall;
        regs.Rip = entry.Value;
        thread.SetRegs(regs);
        LastCreatedChild = null;
        CallCount += calls;
        RunToTrap($"batch of {calls} calls", trap + new ByteCount(1));
    }

    /// <summary>Puts back the registers the thread had before we started.</summary>
    public void RestoreOriginalRegisters()
    {
        var regs = OriginalRegs;
        thread.SetRegs(regs);
    }

    private long Run(SyscallNumber number, ulong a1, ulong a2, ulong a3, ulong a4, ulong a5, ulong a6, bool stopAtSyscallExit)
    {
        var regs = template;
        regs.Rax = (ulong)number;
        regs.OrigRax = NoSyscall;
        regs.Rdi = a1;
        regs.Rsi = a2;
        regs.Rdx = a3;
        regs.R10 = a4;
        regs.R8 = a5;
        regs.R9 = a6;
        regs.Rip = instruction.Value;
        thread.SetRegs(regs);
        LastCreatedChild = null;
        CallCount++;
        return stopAtSyscallExit ? RunToSyscallExit(number) : (long)RunToTrap(number.ToString(), instruction + new ByteCount(3)).Rax;
    }

    // Continues the thread until it stops at the int3 that ends our code, with rip just past it.
    private UserRegs RunToTrap(string what, Address stopRip)
    {
        thread.Continue();
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
            if (status.Event == PtraceEvent.None && status.StopSignal == Signals.SIGTRAP && regs.Rip == stopRip.Value)
            {
                return regs;
            }
            throw new InvalidOperationException($"injected {what} in {thread} stopped unexpectedly: {status} at rip 0x{regs.Rip:x}");
        }
    }

    private long RunToSyscallExit(SyscallNumber number)
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
                var rip = thread.GetRegs().Rip;
                throw new InvalidOperationException($"injected {number} in {thread} stopped unexpectedly: {status} at rip 0x{rip:x}");
            }
            if (entered)
            {
                return (long)thread.GetRegs().Rax;
            }
            entered = true;
            thread.ContinueToSyscall();
        }
    }

    /// <summary>
    /// A trap that only tells us something (a group stop that ended, a pending interrupt): the call has not run
    /// yet, so the thread is simply resumed again. A few at most; more would mean it cannot run at all.
    /// </summary>
    private bool IsNotification(WaitStatus status, ref int count)
    {
        if (status.Event != PtraceEvent.Stop || (status.StopSignal & 0x7f) != Signals.SIGTRAP)
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
