using System.Buffers.Binary;

namespace CriuPS.Native.RemoteSyscall;

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
    public static void Call(Span<byte> code, ref int offset, Interop.SyscallNumber number, IReadOnlyList<ulong> arguments)
    {
        MovImm64(code, ref offset, RexW, MovRax, (ulong)number);
        MovImm64(code, ref offset, RexW, MovRdi, Argument(arguments, 0));
        MovImm64(code, ref offset, RexW, MovRsi, Argument(arguments, 1));
        MovImm64(code, ref offset, RexW, MovRdx, Argument(arguments, 2));
        MovImm64(code, ref offset, RexWB, MovR10, Argument(arguments, 3));
        MovImm64(code, ref offset, RexWB, MovR8, Argument(arguments, 4));
        MovImm64(code, ref offset, RexWB, MovR9, Argument(arguments, 5));
        Syscall(code, ref offset);
    }

    private static ulong Argument(IReadOnlyList<ulong> arguments, int index) => index < arguments.Count ? arguments[index] : 0;

    /// <summary>`jmp *%rax`.</summary>
    public static void JumpRax(Span<byte> code, ref int offset)
    {
        code[offset++] = 0xff;
        code[offset++] = 0xe0;
    }

    public static void Syscall(Span<byte> code, ref int offset)
    {
        code[offset++] = 0x0f;
        code[offset++] = 0x05;
    }
}
