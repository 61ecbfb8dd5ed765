namespace CriuPS.Native.Interop;

/// <summary>kcmp(2): whether two processes share a kernel object (an open file description, an mm...).</summary>
public static class Kcmp
{
    private const SyscallNumber KcmpCall = (SyscallNumber)312;
    public const int File = 0, Vm = 1, Files = 2, Fs = 3, Sighand = 4, Io = 5, Sysvsem = 6;

    /// <summary>0 when equal, 1 or 2 for an ordering, throws on error.</summary>
    public static long Compare(int pid1, int pid2, int type, ulong index1 = 0, ulong index2 = 0) =>
        Syscall.Checked($"kcmp({pid1}, {pid2}, {type})", KcmpCall, (ulong)pid1, (ulong)pid2, (ulong)type, index1, index2);
}
