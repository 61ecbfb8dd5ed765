namespace CriuPS.Native.Interop;

/// <summary>The operations of flock(2) (whole-file locks that belong to an open file description).</summary>
public static class Flock
{
    public const int LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;

    /// <summary>flock(2) on a descriptor of ours; returns 0, or the errno (EWOULDBLOCK with LOCK_NB: someone holds it).</summary>
    public static int Lock(FileDescriptor file, int operation)
    {
        long result = Syscall.Raw(SystemCall.Flock, (ulong)file.Value, (ulong)operation);
        return result < 0 ? (int)-result : 0;
    }
}
