namespace CriuPS.Native.Proc;

/// <summary>The kind of a file lock, as /proc/locks names it.</summary>
public enum LockKind
{
    /// <summary>fcntl(F_SETLK): belongs to the process.</summary>
    Posix,

    /// <summary>flock(2): belongs to the open file description.</summary>
    Flock,

    /// <summary>fcntl(F_OFD_SETLK): belongs to the open file description.</summary>
    Ofd,

    /// <summary>fcntl(F_SETLEASE).</summary>
    Lease,

    Other,
}
