using System.Buffers.Binary;

namespace CriuPS.Native.Arch.X86_64;

/// <summary>The few x86-64 instructions our code in another process is made of, encoded in one place.</summary>
internal static class X86Code
{
    // REX.W prefixes and opcodes of `mov $imm64, %reg` (and `movabs %rax, moffs64`).
    public const byte RexW = 0x48, RexWB = 0x49;
    public const byte MovRax = 0xb8, MovRdx = 0xba, MovRsp = 0xbc, MovRsi = 0xbe, MovRdi = 0xbf, StoreRax = 0xa3;
    public const byte MovR8 = 0xb8, MovR9 = 0xb9, MovR10 = 0xba; // with REX.WB

    /// <summary>REX prefix, opcode, then a 64-bit immediate (or absolute address).</summary>
    public static void MovImm64(Span<byte> code, ref int offset, byte rex, byte opcode, ulong value)
    {
        code[offset++] = rex;
        code[offset++] = opcode;
        BinaryPrimitives.WriteUInt64LittleEndian(code[offset..], value);
        offset += 8;
    }

    /// <summary>`mov $imm32, %eax` (zero-extended into rax): 5 bytes.</summary>
    public static void MovEax(Span<byte> code, ref int offset, int value)
    {
        code[offset++] = 0xb8;
        BinaryPrimitives.WriteInt32LittleEndian(code[offset..], value);
        offset += 4;
    }

    /// <summary>Bytes of <see cref="Call"/>.</summary>
    public const int CallLength = 7 * 10 + 2;

    /// <summary>A system call with immediate arguments: the number in rax, six arguments, `syscall`.</summary>
    public static void Call(Span<byte> code, ref int offset, SystemCall call, ReadOnlySpan<ulong> arguments)
    {
        MovImm64(code, ref offset, RexW, MovRax, (ulong)SyscallTable.NumberOf(call));
        MovImm64(code, ref offset, RexW, MovRdi, Argument(arguments, 0));
        MovImm64(code, ref offset, RexW, MovRsi, Argument(arguments, 1));
        MovImm64(code, ref offset, RexW, MovRdx, Argument(arguments, 2));
        MovImm64(code, ref offset, RexWB, MovR10, Argument(arguments, 3));
        MovImm64(code, ref offset, RexWB, MovR8, Argument(arguments, 4));
        MovImm64(code, ref offset, RexWB, MovR9, Argument(arguments, 5));
        Syscall(code, ref offset);
    }

    private static ulong Argument(ReadOnlySpan<ulong> arguments, int index) => index < arguments.Length ? arguments[index] : 0;

    /// <summary>`jmp *%rax`.</summary>
    public static void JumpRax(Span<byte> code, ref int offset)
    {
        code[offset++] = 0xff;
        code[offset++] = 0xe0;
    }

    /// <summary>The two bytes of `syscall` (0f 05), which <see cref="RemoteSyscall.SyscallGadget"/> looks for.</summary>
    public const byte SyscallOpcode0 = 0x0f, SyscallOpcode1 = 0x05;

    public static void Syscall(Span<byte> code, ref int offset)
    {
        code[offset++] = SyscallOpcode0;
        code[offset++] = SyscallOpcode1;
    }

    /// <summary>`int3`: the trap that ends our code in a process of ours.</summary>
    public const byte Int3 = 0xcc;

    /// <summary>`mov %rax, %rdi`: a call's result becomes the first argument of the next.</summary>
    public static void MovRaxToRdi(Span<byte> code, ref int offset)
    {
        code[offset++] = 0x48;
        code[offset++] = 0x89;
        code[offset++] = 0xc7;
    }

    /// <summary>Bytes of <see cref="BatchedCall"/>: the call, movabs [moffs64], rax (10), cmp rax, -4095 (6), jae rel32 (6).</summary>
    public const int BatchedCallLength = CallLength + 10 + 6 + 6;

    /// <summary>
    /// One call of a <see cref="RemoteSyscall.SyscallBatch"/>, at <paramref name="at"/>: the call, its result stored
    /// at <paramref name="slot"/>, and a jump to <paramref name="trap"/> when that result is an error.
    /// </summary>
    public static void BatchedCall(Span<byte> code, ulong at, ulong trap, SystemCall call, ReadOnlySpan<ulong> arguments, ulong slot)
    {
        int offset = 0;
        Call(code, ref offset, call, arguments);
        MovImm64(code, ref offset, RexW, StoreRax, slot); // movabs %rax, [slot]
        code[offset++] = 0x48; // cmp rax, -4095
        code[offset++] = 0x3d;
        BinaryPrimitives.WriteInt32LittleEndian(code[offset..], -4095);
        offset += 4;
        code[offset++] = 0x0f; // jae trap: rax of -4095 or more, unsigned, is an error
        code[offset++] = 0x83;
        long next = (long)at + offset + 4;
        BinaryPrimitives.WriteInt32LittleEndian(code[offset..], checked((int)((long)trap - next)));
    }

    /// <summary>Bytes of <see cref="StopThenReturn"/> up to the end of its `syscall`, where a thread stops at the tgkill's exit.</summary>
    public const int StopLength = 5 + 3 * 10 + 2;

    /// <summary>
    /// The end of our code in a parked thread: mov $tgkill, %eax; mov tgid, %rdi; mov tid, %rsi; mov sig, %rdx;
    /// syscall — the stop — then the way back to itself (<see cref="ReturnTo"/>).
    /// </summary>
    public static byte[] StopThenReturn(int processId, int threadId, int signal, ulong stack, ulong returnPoint)
    {
        var code = new byte[StopLength + ReturnToLength];
        int offset = 0;
        MovEax(code, ref offset, (int)SyscallNumber.Tgkill);
        MovImm64(code, ref offset, RexW, MovRdi, (ulong)processId);
        MovImm64(code, ref offset, RexW, MovRsi, (ulong)threadId);
        MovImm64(code, ref offset, RexW, MovRdx, (ulong)signal);
        Syscall(code, ref offset);
        ReturnTo(code, ref offset, stack, returnPoint);
        return code;
    }

    /// <summary>Calls with immediate arguments, one after the other, then the way back (<see cref="ReturnTo"/>).</summary>
    public static byte[] CallsThenReturn(IReadOnlyList<(SystemCall Call, ulong[] Arguments)> calls, ulong stack, ulong returnPoint)
    {
        var code = new byte[calls.Count * CallLength + ReturnToLength];
        int offset = 0;
        foreach (var (call, arguments) in calls)
        {
            Call(code, ref offset, call, arguments);
        }
        ReturnTo(code, ref offset, stack, returnPoint);
        return code;
    }

    private const int ReturnToLength = 10 + AbsoluteJumpLength;

    /// <summary>mov stack, %rsp; then the jump to returnPoint: a parked thread's way back to its restorer.</summary>
    private static void ReturnTo(Span<byte> code, ref int offset, ulong stack, ulong returnPoint)
    {
        MovImm64(code, ref offset, RexW, MovRsp, stack);
        JumpTo(code, ref offset, returnPoint);
    }

    /// <summary>Bytes of <see cref="AbsoluteJump"/>.</summary>
    public const int AbsoluteJumpLength = 10 + 2;

    /// <summary>movabs $target, %rax; jmp *%rax: clobbers only rax, which a call does not preserve anyway.</summary>
    public static byte[] AbsoluteJump(ulong target)
    {
        var code = new byte[AbsoluteJumpLength];
        int offset = 0;
        JumpTo(code, ref offset, target);
        return code;
    }

    private static void JumpTo(Span<byte> code, ref int offset, ulong target)
    {
        MovImm64(code, ref offset, RexW, MovRax, target);
        JumpRax(code, ref offset);
    }

    /// <summary>mov %rax, %rdi; mov $close, %eax; syscall: closes the descriptor the call before returned.</summary>
    public static byte[] CloseOfResult()
    {
        var code = new byte[3 + 5 + 2];
        int offset = 0;
        MovRaxToRdi(code, ref offset);
        MovEax(code, ref offset, (int)SyscallNumber.Close);
        Syscall(code, ref offset);
        return code;
    }

    /// <summary>
    /// The two forms of a C library's rt_sigreturn stub: mov $15, %rax; syscall (glibc, musl, Go) and
    /// mov $15, %eax; syscall (the shorter form some compilers emit).
    /// </summary>
    public static readonly byte[][] RtSigreturnStubs =
    [
        [0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05],
        [0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05],
    ];

    /// <summary>Where the `syscall` of a stub of <see cref="RtSigreturnStubs"/> starts, from the stub's first byte.</summary>
    public static int RtSigreturnSyscallOffset(byte firstByte) => firstByte == MovRax ? 5 : 7;
}
