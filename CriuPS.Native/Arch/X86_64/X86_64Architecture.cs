namespace CriuPS.Native.Arch.X86_64;

/// <summary>
/// x86-64: the call number in orig_rax (rax is overwritten by the result), the arguments in rdi, rsi, rdx, r10, r8,
/// r9, and a `syscall` instruction of <see cref="SyscallRestart.SyscallInstructionLength"/> bytes before rip.
/// </summary>
public sealed class X86_64Architecture : IArchitecture
{
    public static X86_64Architecture Instance { get; } = new();

    private X86_64Architecture()
    {
    }

    public string Name => "x86_64";

    public XStateLayout ExtendedState => XStateLayout.Current;

    public byte[] SyscallInstruction { get; } = [X86Code.SyscallOpcode0, X86Code.SyscallOpcode1];

    public byte[] SyscallThenTrap { get; } = [X86Code.SyscallOpcode0, X86Code.SyscallOpcode1, X86Code.Int3];

    public int TrapStopOffset => 3;

    public byte[] Breakpoint { get; } = [X86Code.Int3];

    public int BatchedCallLength => X86Code.BatchedCallLength;

    public void EncodeBatchedCall(Span<byte> code, ulong at, ulong trap, SystemCall call, ReadOnlySpan<ulong> arguments, ulong slot) =>
        X86Code.BatchedCall(code, at, trap, call, arguments, slot);

    public byte[] EncodeStopThenReturn(int processId, int threadId, int signal, ulong stack, ulong returnPoint) =>
        X86Code.StopThenReturn(processId, threadId, signal, stack, returnPoint);

    public int StopExitOffset => X86Code.StopLength;

    public byte[] EncodeCallsThenReturn(IReadOnlyList<(SystemCall Call, ulong[] Arguments)> calls, ulong stack, ulong returnPoint) =>
        X86Code.CallsThenReturn(calls, stack, returnPoint);

    public byte[] EncodeCloseOfResult() => X86Code.CloseOfResult();

    public byte[] EncodeAbsoluteJump(ulong target) => X86Code.AbsoluteJump(target);

    public int AbsoluteJumpLength => X86Code.AbsoluteJumpLength;

    public IReadOnlyList<byte[]> SignalRestorerStubs => X86Code.RtSigreturnStubs;

    public int SignalRestorerSyscallOffset(byte firstByte) => X86Code.RtSigreturnSyscallOffset(firstByte);

    public long NumberOf(SystemCall call) => (long)SyscallTable.NumberOf(call);

    public ulong InstructionPointerOf(in UserRegs regs) => regs.Rip;

    public UserRegs WithInstructionPointer(UserRegs regs, ulong address)
    {
        regs.Rip = address;
        return regs;
    }

    public UserRegs WithStackPointer(UserRegs regs, ulong address)
    {
        regs.Rsp = address;
        return regs;
    }

    public UserRegs WithCall(UserRegs regs, SystemCall call, ulong a1, ulong a2, ulong a3, ulong a4, ulong a5, ulong a6)
    {
        regs.Rax = (ulong)SyscallTable.NumberOf(call);
        regs.Rdi = a1;
        regs.Rsi = a2;
        regs.Rdx = a3;
        regs.R10 = a4;
        regs.R8 = a5;
        regs.R9 = a6;
        return regs;
    }

    public UserRegs OutsideSyscall(UserRegs regs)
    {
        regs.OrigRax = ulong.MaxValue;
        return regs;
    }

    public UserRegs EnteringSyscall(UserRegs regs, SystemCall call)
    {
        regs.OrigRax = (ulong)SyscallTable.NumberOf(call);
        return regs;
    }

    public SystemCall? SyscallOf(in UserRegs regs) => (long)regs.OrigRax < 0 ? null : SyscallTable.CallOf((long)regs.OrigRax);

    public long ResultOf(in UserRegs regs) => (long)regs.Rax;

    public ulong ArgumentOf(in UserRegs regs, int index) => index switch
    {
        0 => regs.Rdi,
        1 => regs.Rsi,
        2 => regs.Rdx,
        3 => regs.R10,
        4 => regs.R8,
        5 => regs.R9,
        _ => throw new ArgumentOutOfRangeException(nameof(index), index, "a system call has six arguments"),
    };

    public UserRegs WithArgument(UserRegs regs, int index, ulong value)
    {
        switch (index)
        {
            case 0: regs.Rdi = value; break;
            case 1: regs.Rsi = value; break;
            case 2: regs.Rdx = value; break;
            case 3: regs.R10 = value; break;
            case 4: regs.R8 = value; break;
            case 5: regs.R9 = value; break;
            default: throw new ArgumentOutOfRangeException(nameof(index), index, "a system call has six arguments");
        }
        return regs;
    }

    public UserRegs ForImage(UserRegs regs) => SyscallRestart.ForImage(regs);

    public UserRegs ForResume(UserRegs regs, bool restartBlockKept) => SyscallRestart.ForResume(regs, restartBlockKept);

    public bool HasAbsoluteDeadline(in UserRegs regs) => SyscallRestart.HasAbsoluteDeadline(regs);

    public UserRegs RunAgain(UserRegs regs)
    {
        regs.Rax = regs.OrigRax;
        regs.Rip -= SyscallRestart.SyscallInstructionLength;
        regs.OrigRax = ulong.MaxValue;
        return regs;
    }

    public UserRegs RunRestartSyscall(UserRegs regs)
    {
        regs.Rax = (ulong)SyscallNumber.RestartSyscall;
        regs.Rip -= SyscallRestart.SyscallInstructionLength;
        regs.OrigRax = ulong.MaxValue;
        return regs;
    }

    public UserRegs ReturnWith(UserRegs regs, long result)
    {
        regs.Rax = (ulong)result;
        regs.OrigRax = ulong.MaxValue;
        return regs;
    }
}
