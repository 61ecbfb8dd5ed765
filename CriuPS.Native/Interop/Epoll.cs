using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>epoll_create1(2); registrations are made by the process itself (epoll_ctl with its own fd numbers).</summary>
public static class Epoll
{
    public const int CtlAdd = 1;

    public static FileDescriptor Create()
    {
        int fd = LibC.epoll_create1(LibC.EPOLL_CLOEXEC);
        return fd >= 0 ? new FileDescriptor(fd) : throw new NativeException("epoll_create1", LibC.errno);
    }
}
