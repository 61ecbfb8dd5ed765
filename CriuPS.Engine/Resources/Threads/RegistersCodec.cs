using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Arch.X86_64;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Resources.Threads;

/// <summary>General-purpose registers between ptrace's user_regs_struct and CRIU's user_x86_regs_entry (same order).</summary>
internal static class RegistersCodec
{
    public static UserX86RegsEntry ToImage(in UserRegs r) => new()
    {
        R15 = r.R15, R14 = r.R14, R13 = r.R13, R12 = r.R12, Bp = r.Rbp, Bx = r.Rbx, R11 = r.R11, R10 = r.R10,
        R9 = r.R9, R8 = r.R8, Ax = r.Rax, Cx = r.Rcx, Dx = r.Rdx, Si = r.Rsi, Di = r.Rdi, OrigAx = r.OrigRax,
        Ip = r.Rip, Cs = r.Cs, Flags = r.Eflags, Sp = r.Rsp, Ss = r.Ss, FsBase = r.FsBase, GsBase = r.GsBase,
        Ds = r.Ds, Es = r.Es, Fs = r.Fs, Gs = r.Gs, Mode = UserX86RegsMode.Native,
    };

    public static UserRegs FromImage(UserX86RegsEntry e) => new()
    {
        R15 = e.R15, R14 = e.R14, R13 = e.R13, R12 = e.R12, Rbp = e.Bp, Rbx = e.Bx, R11 = e.R11, R10 = e.R10,
        R9 = e.R9, R8 = e.R8, Rax = e.Ax, Rcx = e.Cx, Rdx = e.Dx, Rsi = e.Si, Rdi = e.Di, OrigRax = e.OrigAx,
        Rip = e.Ip, Cs = e.Cs, Eflags = e.Flags, Rsp = e.Sp, Ss = e.Ss, FsBase = e.FsBase, GsBase = e.GsBase,
        Ds = e.Ds, Es = e.Es, Fs = e.Fs, Gs = e.Gs,
    };
}
