using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// socket(2), socketpair(2), bind(2), listen(2), connect(2), accept4(2) and shutdown(2) for AF_UNIX sockets of
/// this process. Names are the raw bytes of sun_path as the kernel keeps them:
/// a path with its terminating NUL, an abstract name starting with a NUL, or nothing for an unnamed socket.
/// </summary>
public static unsafe class Socket
{
    /// <summary>The most bytes sun_path holds.</summary>
    public const int MaxNameLength = 108;

    /// <summary>A new AF_UNIX socket of <paramref name="type"/>, close-on-exec and non-blocking (so that nothing the engine does on it can hang).</summary>
    public static FileDescriptor Create(int type)
    {
        int fd = LibC.socket(LibC.AF_UNIX, type | LibC.SOCK_CLOEXEC | LibC.SOCK_NONBLOCK, 0);
        return fd >= 0 ? new FileDescriptor(fd) : throw new NativeException($"socket(AF_UNIX, {type})", LibC.errno);
    }

    /// <summary>Two connected AF_UNIX sockets of <paramref name="type"/>, close-on-exec and non-blocking.</summary>
    public static (FileDescriptor First, FileDescriptor Second) Pair(int type)
    {
        int* ends = stackalloc int[2];
        if (LibC.socketpair(LibC.AF_UNIX, type | LibC.SOCK_CLOEXEC | LibC.SOCK_NONBLOCK, 0, ends) != 0)
        {
            throw new NativeException($"socketpair(AF_UNIX, {type})", LibC.errno);
        }
        return (new FileDescriptor(ends[0]), new FileDescriptor(ends[1]));
    }

    /// <summary>Binds to <paramref name="name"/>; returns 0 or the errno.</summary>
    public static int TryBind(FileDescriptor socket, ReadOnlySpan<byte> name)
    {
        var address = Address(name, out var length);
        return LibC.bind(socket.Value, (sockaddr*)&address, length) == 0 ? 0 : LibC.errno;
    }

    public static void Listen(FileDescriptor socket, int backlog)
    {
        if (LibC.listen(socket.Value, backlog) != 0)
        {
            throw new NativeException($"listen(backlog {backlog})", LibC.errno);
        }
    }

    /// <summary>Connects to the socket named <paramref name="name"/>; returns 0 or the errno.</summary>
    public static int TryConnect(FileDescriptor socket, ReadOnlySpan<byte> name)
    {
        var address = Address(name, out var length);
        return LibC.connect(socket.Value, (sockaddr*)&address, length) == 0 ? 0 : LibC.errno;
    }

    /// <summary>The first connection waiting on a listening socket, close-on-exec and non-blocking.</summary>
    public static FileDescriptor Accept(FileDescriptor listener)
    {
        int fd = LibC.accept4(listener.Value, null, null, LibC.SOCK_CLOEXEC | LibC.SOCK_NONBLOCK);
        return fd >= 0 ? new FileDescriptor(fd) : throw new NativeException("accept4", LibC.errno);
    }

    /// <summary>shutdown(2) with SHUT_RD, SHUT_WR or SHUT_RDWR.</summary>
    public static void Shutdown(FileDescriptor socket, int how)
    {
        if (LibC.shutdown(socket.Value, how) != 0)
        {
            throw new NativeException($"shutdown({how})", LibC.errno);
        }
    }

    /// <summary>
    /// ioctl(SIOCUNIXFILE): an O_PATH descriptor of the file a socket is bound to, the way to learn whether that
    /// file still exists at its path and who owns it. Needs CAP_NET_ADMIN.
    /// </summary>
    public static FileDescriptor OpenBoundFile(FileDescriptor socket)
    {
        const int SiocUnixFile = 0x89E0; // SIOCPROTOPRIVATE
        int fd = LibC.ioctl(socket.Value, SiocUnixFile);
        return fd >= 0 ? new FileDescriptor(fd) : throw new NativeException("ioctl(SIOCUNIXFILE)", LibC.errno);
    }

    /// <summary>A sockaddr_un for <paramref name="name"/> and its length (the family and the name's bytes, as the kernel counts).</summary>
    public static sockaddr_un Address(ReadOnlySpan<byte> name, out socklen_t length)
    {
        if (name.Length > MaxNameLength)
        {
            throw new ArgumentException($"a unix socket name holds at most {MaxNameLength} bytes, not {name.Length}", nameof(name));
        }
        var address = new sockaddr_un { sun_family = (ushort)LibC.AF_UNIX };
        name.CopyTo(new Span<byte>(address.sun_path, MaxNameLength));
        length = (uint)(sizeof(ushort) + name.Length); // sun_family, then the name
        return address;
    }
}
