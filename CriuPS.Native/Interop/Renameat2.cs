namespace CriuPS.Native.Interop;

/// <summary>renameat2(2), which Tmds.LibC does not bind.</summary>
public static unsafe class Renameat2
{
    private const uint RenameExchange = 2;

    /// <summary>Swaps two paths atomically (RENAME_EXCHANGE): each name then refers to what the other did.</summary>
    public static void Exchange(string a, string b)
    {
        var pa = FileDescriptor.NullTerminated(a);
        var pb = FileDescriptor.NullTerminated(b);
        fixed (byte* x = pa)
        fixed (byte* y = pb)
        {
            Syscall.Checked("renameat2(RENAME_EXCHANGE)", SystemCall.Renameat2, unchecked((ulong)Fcntl.AT_FDCWD), (ulong)x, unchecked((ulong)Fcntl.AT_FDCWD), (ulong)y, RenameExchange);
        }
    }
}
