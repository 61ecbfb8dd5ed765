namespace CriuPS.Native.Interop;

/// <summary>signalfd4(2): a descriptor that reads the signals of a mask pending for whoever reads it.</summary>
public static unsafe class Signalfd
{
    /// <summary>A new signalfd for the signals of <paramref name="mask"/> (bit N-1 for signal N).</summary>
    public static FileDescriptor Create(ulong mask, int flags) =>
        new((int)Syscall.Checked("signalfd4", SystemCall.Signalfd4, ulong.MaxValue, (ulong)&mask, sizeof(ulong), (ulong)(flags | O.CLOEXEC)));
}
