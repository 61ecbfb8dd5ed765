using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>fcntl(2) commands CriuPS uses on its own descriptors.</summary>
public static class Fcntl
{
    public const int F_DUPFD = 0, F_GETFD = 1, F_SETFD = 2, F_GETFL = 3, F_SETFL = 4;
    public const int F_SETPIPE_SZ = 1031, F_GETPIPE_SZ = 1032, F_DUPFD_CLOEXEC = 1030;
    public const int FD_CLOEXEC = 1;

    public static int Call(FileDescriptor fd, int command, int argument = 0)
    {
        int result = LibC.fcntl(fd.Value, command, argument);
        if (result < 0)
        {
            throw new NativeException($"fcntl({fd.Value}, {command})", LibC.errno);
        }
        return result;
    }
}
