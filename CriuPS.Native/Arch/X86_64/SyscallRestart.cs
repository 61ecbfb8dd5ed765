using CriuPS.Native.Interop;

namespace CriuPS.Native.Arch.X86_64;

/// <summary>
/// A thread stopped inside a system call shows rax = -ERESTART* and orig_rax = the call. The kernel would
/// restart the call on the way back to user space, but only while it still considers the thread to be in that
/// call; once we have replaced its registers it no longer does, so we do the kernel's job ourselves before
/// letting the thread go (and put orig_rax = -1 so that nothing restarts twice).
/// </summary>
public static class SyscallRestart
{
    /// <summary>Bytes of the `syscall` instruction: a call runs again from its address, rip less this.</summary>
    public const int SyscallInstructionLength = 2;

    /// <summary>Whether the registers show a system call interrupted with one of the kernel's restart codes.</summary>
    public static bool IsInterrupted(in UserRegs regs) =>
        (long)regs.OrigRax >= 0 && (long)regs.Rax is -Errno.ERESTARTSYS or -Errno.ERESTARTNOINTR or -Errno.ERESTARTNOHAND or -Errno.ERESTART_RESTARTBLOCK;

    /// <summary>
    /// The registers as an image records them (as CRIU does): a restartable call already set up to run again,
    /// one that needs its restart block turned into EINTR; orig_rax keeps the call number for the record.
    /// </summary>
    public static UserRegs ForImage(UserRegs regs)
    {
        var original = regs.OrigRax;
        var resumed = ForResume(regs, restartBlockKept: false);
        resumed.OrigRax = original;
        return resumed;
    }

    /// <summary>
    /// The registers with which the thread resumes as the kernel would after a stop without a signal handler:
    /// the call runs again. A call that needs its restart block (relative sleeps, poll...) is resumed through
    /// restart_syscall when that block is still the kernel's (<paramref name="restartBlockKept"/>, the same
    /// process); in a restored process the block is gone: a futex wait whose deadline is absolute runs again with its
    /// own arguments (the block holds that same deadline), any other returns EINTR, which the call's contract allows
    /// (CriuPS gives such calls their remaining time on restore, Resources/Threads/InterruptedCall.cs).
    /// </summary>
    public static UserRegs ForResume(UserRegs regs, bool restartBlockKept)
    {
        if (IsInterrupted(regs))
        {
            switch (-(long)regs.Rax)
            {
                case Errno.ERESTART_RESTARTBLOCK when restartBlockKept:
                    regs.Rax = (ulong)SyscallNumber.RestartSyscall;
                    regs.Rip -= SyscallInstructionLength;
                    break;
                case Errno.ERESTART_RESTARTBLOCK when HasAbsoluteDeadline(regs):
                    regs.Rax = regs.OrigRax;
                    regs.Rip -= SyscallInstructionLength;
                    break;
                case Errno.ERESTART_RESTARTBLOCK:
                    regs.Rax = unchecked((ulong)-Errno.EINTR);
                    break;
                default:
                    regs.Rax = regs.OrigRax;
                    regs.Rip -= SyscallInstructionLength;
                    break;
            }
        }
        regs.OrigRax = ulong.MaxValue;
        return regs;
    }

    /// <summary>
    /// Whether an interrupted futex wait has an absolute deadline (FUTEX_WAIT_BITSET and the other commands, or the
    /// futex_wait call): only FUTEX_WAIT takes a relative timeout, which the kernel turned into a deadline of its own.
    /// </summary>
    public static bool HasAbsoluteDeadline(in UserRegs regs) =>
        (long)regs.OrigRax == (long)SyscallNumber.FutexWait
        || (long)regs.OrigRax == (long)SyscallNumber.Futex && FutexCommand(regs.Rsi) != FutexWaitCommand;

    // FUTEX_WAIT: the only futex command whose timeout is relative.
    private const int FutexWaitCommand = 0;

    // The command of a futex operation without its FUTEX_PRIVATE_FLAG (128) and FUTEX_CLOCK_REALTIME (256) bits.
    private static int FutexCommand(ulong operation) => (int)(operation & 0x7f);
}
