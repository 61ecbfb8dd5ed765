using Tmds.Linux;

namespace CriuPS.Native.Interop;

// Tmds.LibC has these as static properties; these are constants because `const` expressions and injected calls'
// arguments use them. NativeConstantsTests checks every one against Tmds.LibC's value, so the two cannot drift apart.
/// <summary>fcntl(2) commands CriuPS uses on its own descriptors.</summary>
public static class Fcntl
{
    public const int F_DUPFD = 0, F_GETFD = 1, F_SETFD = 2, F_GETFL = 3, F_SETFL = 4;
    public const int F_SETPIPE_SZ = 1031, F_GETPIPE_SZ = 1032, F_DUPFD_CLOEXEC = 1030;

    /// <summary>The *at calls' "relative to the working directory".</summary>
    public const int AT_FDCWD = -100;
    public const int FD_CLOEXEC = 1;

    /// <summary>Record locks: classic POSIX locks belong to the process, OFD locks to the open file description.</summary>
    public const int F_GETLK = 5, F_SETLK = 6, F_OFD_GETLK = 36, F_OFD_SETLK = 37;
    public const int F_SETLEASE = 1024, F_GETLEASE = 1025;
    public const short F_RDLCK = 0, F_WRLCK = 1, F_UNLCK = 2;

    public static int Call(FileDescriptor fd, int command, int argument = 0)
    {
        int result = LibC.fcntl(fd.Value, command, argument);
        if (result < 0)
        {
            throw new NativeException($"fcntl({fd.Value}, {command})", LibC.errno);
        }
        return result;
    }

    /// <summary>Sets a record lock without waiting (F_SETLK or F_OFD_SETLK); returns 0, or the errno (EAGAIN on a conflict).</summary>
    public static unsafe int TrySetLock(FileDescriptor fd, int command, RecordLock range)
    {
        return LibC.fcntl(fd.Value, command, &range) == 0 ? 0 : LibC.errno;
    }
}
