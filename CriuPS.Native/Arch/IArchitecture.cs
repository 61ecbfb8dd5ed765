using CriuPS.Native.Arch.X86_64;

namespace CriuPS.Native.Arch;

/// <summary>
/// What the engine asks of the processor architecture about a thread stopped in a system call: which call, with which
/// arguments and result, and how to make it run again or return. The engine reads a stopped thread's registers only
/// through this, as CRIU's compel does through its per-architecture REG_* macros. The register set and the XSAVE
/// layout are the architecture's own types (<see cref="UserRegs"/>, <see cref="XStateLayout"/>), as CRIU's
/// user_regs_struct_t is; x86-64 (<see cref="X86_64Architecture"/>) is the one implementation.
/// </summary>
public interface IArchitecture
{
    /// <summary>The architecture this build of CriuPS runs on and checkpoints.</summary>
    static IArchitecture Current { get; } = X86_64Architecture.Instance;

    /// <summary>The name `uname -m` gives it.</summary>
    string Name { get; }

    /// <summary>Where this CPU puts each extended state component (XSAVE) in a thread's regset.</summary>
    XStateLayout ExtendedState { get; }

    /// <summary>The call a thread stopped in, or null when it stopped outside a system call.</summary>
    SyscallNumber? SyscallOf(in UserRegs regs);

    /// <summary>The result register: the call's result, or -ERESTART* while the kernel means to restart it.</summary>
    long ResultOf(in UserRegs regs);

    /// <summary>Argument <paramref name="index"/> (0 to 5) of the call, in the order of its C prototype.</summary>
    ulong ArgumentOf(in UserRegs regs, int index);

    /// <summary>The registers with argument <paramref name="index"/> set to <paramref name="value"/>.</summary>
    UserRegs WithArgument(UserRegs regs, int index, ulong value);

    /// <summary>The registers as an image records them (<see cref="SyscallRestart.ForImage"/>).</summary>
    UserRegs ForImage(UserRegs regs);

    /// <summary>The registers a thread resumes with after a stop in a call (<see cref="SyscallRestart.ForResume"/>).</summary>
    UserRegs ForResume(UserRegs regs, bool restartBlockKept);

    /// <summary>Whether an interrupted futex wait has an absolute deadline (<see cref="SyscallRestart.HasAbsoluteDeadline"/>).</summary>
    bool HasAbsoluteDeadline(in UserRegs regs);

    /// <summary>The registers of a thread that runs the call it was stopped in again, with the same arguments.</summary>
    UserRegs RunAgain(UserRegs regs);

    /// <summary>The registers of a thread that goes on through restart_syscall (the kernel's restart block).</summary>
    UserRegs RunRestartSyscall(UserRegs regs);

    /// <summary>The registers of a thread that returns <paramref name="result"/> from the call it was stopped in.</summary>
    UserRegs ReturnWith(UserRegs regs, long result);
}
