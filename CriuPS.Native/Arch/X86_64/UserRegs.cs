using System.Runtime.InteropServices;

namespace CriuPS.Native.Arch.X86_64;

/// <summary>struct user_regs_struct of x86-64, in kernel order (also CRIU's user_x86_regs_entry order).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct UserRegs
{
    public ulong R15, R14, R13, R12, Rbp, Rbx, R11, R10, R9, R8;
    public ulong Rax, Rcx, Rdx, Rsi, Rdi, OrigRax, Rip, Cs, Eflags, Rsp, Ss;
    public ulong FsBase, GsBase, Ds, Es, Fs, Gs;

    public const int Size = 27 * 8;
}
