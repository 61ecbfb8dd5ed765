using CriuPS.Native.Arch.X86_64;

namespace CriuPS.Native.Arch;

/// <summary>
/// What the engine asks of the processor architecture about a thread stopped in a system call: which call, with which
/// arguments and result, and how to make it run again or return. The engine reads a stopped thread's registers only
/// through this, as CRIU's compel does through its per-architecture REG_* macros. The register set and the XSAVE
/// layout are the architecture's own types (<see cref="UserRegs"/>, <see cref="XStateLayout"/>), as CRIU's
/// user_regs_struct_t is; x86-64 (<see cref="X86_64Architecture"/>) is the one implementation. Calls are named by
/// <see cref="SystemCall"/> and numbered here, and the code injected into a process is encoded here, so that a new
/// architecture is a folder beside Arch/X86_64 with an implementation of this, chosen by <see cref="Current"/>.
/// </summary>
public interface IArchitecture
{
    /// <summary>The architecture this build of CriuPS runs on and checkpoints.</summary>
    static IArchitecture Current { get; } = X86_64Architecture.Instance;

    /// <summary>The name `uname -m` gives it.</summary>
    string Name { get; }

    /// <summary>Where this CPU puts each extended state component (XSAVE) in a thread's regset.</summary>
    XStateLayout ExtendedState { get; }

    /// <summary>
    /// The instruction that makes a system call (x86-64: `syscall`, 0f 05): what the injection borrows from a process
    /// for its first call, and the first bytes of its own code.
    /// </summary>
    byte[] SyscallInstruction { get; }

    /// <summary>
    /// The injection's own code: the system call instruction, then a breakpoint that hands the thread back to the
    /// tracer as soon as the call returns (x86-64: syscall; int3).
    /// </summary>
    byte[] SyscallThenTrap { get; }

    /// <summary>Where a thread that ran <see cref="SyscallThenTrap"/> stops, from its start: just past the breakpoint.</summary>
    int TrapStopOffset { get; }

    /// <summary>The number the kernel of this architecture knows <paramref name="call"/> by.</summary>
    long NumberOf(SystemCall call);

    /// <summary>
    /// The breakpoint that ends our code in a process of ours (x86-64: int3): the thread stops just past it.
    /// </summary>
    byte[] Breakpoint { get; }

    /// <summary>Bytes of one call of a batch (<see cref="EncodeBatchedCall"/>).</summary>
    int BatchedCallLength { get; }

    /// <summary>
    /// One call of a <see cref="RemoteSyscall.SyscallBatch"/>, to run at <paramref name="at"/>: the call with immediate
    /// arguments (those not given are 0), its result stored at <paramref name="slot"/>, and a jump to
    /// <paramref name="trap"/> when that result is an error (-4095 to -1).
    /// </summary>
    void EncodeBatchedCall(Span<byte> code, ulong at, ulong trap, SystemCall call, ReadOnlySpan<ulong> arguments, ulong slot);

    /// <summary>
    /// The end of our code in a parked thread: tgkill(<paramref name="processId"/>, <paramref name="threadId"/>,
    /// <paramref name="signal"/>) — the stop (signal 0 sends nothing: the stop is then the call's exit) — then the way
    /// back to itself, the stack pointer at <paramref name="stack"/> and a jump to <paramref name="returnPoint"/>.
    /// </summary>
    byte[] EncodeStopThenReturn(int processId, int threadId, int signal, ulong stack, ulong returnPoint);

    /// <summary>Where a thread that ran <see cref="EncodeStopThenReturn"/> is at the exit of its tgkill, from its start.</summary>
    int StopExitOffset { get; }

    /// <summary>
    /// Code that makes <paramref name="calls"/> with immediate arguments, then takes a parked thread's way back: the
    /// stack pointer at <paramref name="stack"/> and a jump to <paramref name="returnPoint"/>.
    /// </summary>
    byte[] EncodeCallsThenReturn(IReadOnlyList<(SystemCall Call, ulong[] Arguments)> calls, ulong stack, ulong returnPoint);

    /// <summary>Code that closes the descriptor the call just before it returned (its result is the argument).</summary>
    byte[] EncodeCloseOfResult();

    /// <summary>
    /// An absolute jump to <paramref name="target"/> that clobbers no register a function call preserves (x86-64:
    /// movabs $target, %rax; jmp *%rax): what a vDSO proxy writes over each saved function's entry.
    /// </summary>
    byte[] EncodeAbsoluteJump(ulong target);

    /// <summary>Bytes of <see cref="EncodeAbsoluteJump"/>.</summary>
    int AbsoluteJumpLength { get; }

    /// <summary>
    /// The forms of a C library's signal restorer (its rt_sigreturn stub, glibc's and musl's __restore_rt), which
    /// <see cref="RemoteSyscall.SignalRestorer"/> looks for.
    /// </summary>
    IReadOnlyList<byte[]> SignalRestorerStubs { get; }

    /// <summary>Where the system call instruction of the restorer stub whose first byte is <paramref name="firstByte"/> starts.</summary>
    int SignalRestorerSyscallOffset(byte firstByte);

    /// <summary>Where the thread runs next: its instruction pointer.</summary>
    ulong InstructionPointerOf(in UserRegs regs);

    /// <summary>The registers with the instruction pointer at <paramref name="address"/>.</summary>
    UserRegs WithInstructionPointer(UserRegs regs, ulong address);

    /// <summary>The registers with the stack pointer at <paramref name="address"/>.</summary>
    UserRegs WithStackPointer(UserRegs regs, ulong address);

    /// <summary>
    /// The registers of a thread about to make <paramref name="call"/> with these arguments once it runs the system
    /// call instruction (the instruction pointer is left as it is).
    /// </summary>
    UserRegs WithCall(UserRegs regs, SystemCall call, ulong a1, ulong a2, ulong a3, ulong a4, ulong a5, ulong a6);

    /// <summary>
    /// The registers of a thread that is in no system call: the kernel then restarts nothing when they are set (x86-64:
    /// orig_rax = -1).
    /// </summary>
    UserRegs OutsideSyscall(UserRegs regs);

    /// <summary>
    /// The registers of a thread at a system-call-entry stop that makes <paramref name="call"/> instead of the call it
    /// stopped at (x86-64: the kernel reads the number from orig_rax once the stop ends).
    /// </summary>
    UserRegs EnteringSyscall(UserRegs regs, SystemCall call);

    /// <summary>
    /// The call a thread stopped in, decoded from the number its registers show; null when it stopped outside a system
    /// call, or in one that <see cref="SystemCall"/> does not name (none that CriuPS makes or resumes).
    /// </summary>
    SystemCall? SyscallOf(in UserRegs regs);

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
