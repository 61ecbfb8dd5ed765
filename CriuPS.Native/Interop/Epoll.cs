using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// epoll_create1(2), epoll_ctl(2) and epoll_wait(2). A restored process's registrations are made by the process itself
/// (epoll_ctl with its own fd numbers, <see cref="CtlAdd"/>); the engine's own sets use the calls below.
/// </summary>
public static class Epoll
{
    public const int CtlAdd = 1;

    public static FileDescriptor Create()
    {
        int fd = LibC.epoll_create1(LibC.EPOLL_CLOEXEC);
        return fd >= 0 ? new FileDescriptor(fd) : throw new NativeException("epoll_create1", LibC.errno);
    }

    /// <summary>Watches <paramref name="fd"/> for input; its readiness reports <paramref name="data"/>.</summary>
    public static unsafe void AddInput(FileDescriptor epoll, FileDescriptor fd, ulong data)
    {
        var ev = new epoll_event { events = LibC.EPOLLIN, data = new epoll_data_t { u64 = data } };
        if (LibC.epoll_ctl(epoll.Value, LibC.EPOLL_CTL_ADD, fd.Value, &ev) != 0)
        {
            throw new NativeException("epoll_ctl(EPOLL_CTL_ADD)", LibC.errno);
        }
    }

    /// <summary>Stops watching <paramref name="fd"/>.</summary>
    public static unsafe void Remove(FileDescriptor epoll, FileDescriptor fd)
    {
        if (LibC.epoll_ctl(epoll.Value, LibC.EPOLL_CTL_DEL, fd.Value, null) != 0)
        {
            throw new NativeException("epoll_ctl(EPOLL_CTL_DEL)", LibC.errno);
        }
    }

    /// <summary>
    /// Waits for watched descriptors to be ready, without end or at most <paramref name="timeoutMilliseconds"/>;
    /// returns the data of each, into <paramref name="ready"/> (none when the time ran out).
    /// </summary>
    public static unsafe int Wait(FileDescriptor epoll, Span<ulong> ready, int timeoutMilliseconds = -1)
    {
        var events = stackalloc epoll_event[ready.Length];
        int n;
        do
        {
            n = LibC.epoll_wait(epoll.Value, events, ready.Length, timeoutMilliseconds);
        }
        while (n < 0 && LibC.errno == Errno.EINTR);
        if (n < 0)
        {
            throw new NativeException("epoll_wait", LibC.errno);
        }
        for (int i = 0; i < n; i++)
        {
            ready[i] = events[i].data.u64;
        }
        return n;
    }
}
