using System.Buffers.Binary;
using System.Net;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// socket(2), socketpair(2), bind(2), listen(2), connect(2), accept4(2), shutdown(2), getsockname(2), the
/// peer's name and the socket ioctls, for sockets of this process. Unix socket names are the raw bytes of
/// sun_path as the kernel keeps them: a path with its terminating NUL, an abstract name starting with a NUL, or
/// nothing for an unnamed socket. IPv4 and IPv6 addresses are <see cref="IPEndPoint"/>s (an IPv6 scope id is the
/// interface index).
/// </summary>
public static unsafe class Socket
{
    /// <summary>The most bytes sun_path holds.</summary>
    public const int MaxNameLength = 108;

    // Families, types and protocols are Tmds.LibC's (LibC.AF_INET, LibC.SOCK_STREAM, LibC.IPPROTO_TCP...); the socket
    // ioctls here are those it has no name for.

    /// <summary>ioctls: bytes waiting to be read, bytes not yet acknowledged (sent or not), bytes not yet sent.</summary>
    public const int SIOCINQ = 0x541B, SIOCOUTQ = 0x5411, SIOCOUTQNSD = 0x894B;

    /// <summary>A new AF_UNIX socket of <paramref name="type"/>, close-on-exec and non-blocking (so that nothing the engine does on it can hang).</summary>
    public static FileDescriptor Create(int type) => Create(LibC.AF_UNIX, type, 0);

    /// <summary>A new socket, close-on-exec and non-blocking, in the calling thread's network namespace.</summary>
    public static FileDescriptor Create(int family, int type, int protocol)
    {
        int fd = LibC.socket(family, type | LibC.SOCK_CLOEXEC | LibC.SOCK_NONBLOCK, protocol);
        return fd >= 0 ? new FileDescriptor(fd) : throw new NativeException($"socket({family}, {type}, {protocol})", LibC.errno);
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

    /// <summary>Binds an IPv4 or IPv6 socket to <paramref name="address"/>; returns 0 or the errno.</summary>
    public static int TryBind(FileDescriptor socket, IPEndPoint address)
    {
        Span<byte> raw = stackalloc byte[InetAddressLength];
        int length = Encode(address, raw);
        fixed (byte* p = raw)
        {
            return LibC.bind(socket.Value, (sockaddr*)p, (uint)length) == 0 ? 0 : LibC.errno;
        }
    }

    /// <summary>Connects an IPv4 or IPv6 socket to <paramref name="address"/>; returns 0 or the errno (EINPROGRESS for a connection under way).</summary>
    public static int TryConnect(FileDescriptor socket, IPEndPoint address)
    {
        Span<byte> raw = stackalloc byte[InetAddressLength];
        int length = Encode(address, raw);
        fixed (byte* p = raw)
        {
            return LibC.connect(socket.Value, (sockaddr*)p, (uint)length) == 0 ? 0 : LibC.errno;
        }
    }

    /// <summary>getsockname(2) of an IPv4 or IPv6 socket: the address it is bound to (any address and port 0 when unbound).</summary>
    public static IPEndPoint LocalAddress(FileDescriptor socket)
    {
        Span<byte> raw = stackalloc byte[128];
        socklen_t length = (uint)raw.Length;
        fixed (byte* p = raw)
        {
            if (LibC.getsockname(socket.Value, (sockaddr*)p, &length) != 0)
            {
                throw new NativeException("getsockname", LibC.errno);
            }
        }
        return Decode(raw[..(int)(uint)length]);
    }

    /// <summary>
    /// The address an IPv4 or IPv6 socket is connected to, or null when it has none. Read with getsockopt(SO_PEERNAME),
    /// which unlike getpeername(2) also answers for a TCP socket still connecting (SYN_SENT) or reset.
    /// </summary>
    public static IPEndPoint? PeerAddress(FileDescriptor socket)
    {
        // The kernel wants a buffer no longer than the address it holds.
        Span<byte> raw = stackalloc byte[SocketOption.Get(socket, LibC.SOL_SOCKET, LibC.SO_DOMAIN) == LibC.AF_INET6 ? 28 : 16];
        socklen_t length = (uint)raw.Length;
        fixed (byte* p = raw)
        {
            if (LibC.getsockopt(socket.Value, LibC.SOL_SOCKET, LibC.SO_PEERNAME, p, &length) != 0)
            {
                int errno = LibC.errno;
                return errno == Errno.ENOTCONN ? null : throw new NativeException("getsockopt(SO_PEERNAME)", errno);
            }
        }
        return Decode(raw[..(int)(uint)length]);
    }

    /// <summary>One of the queue-size ioctls (<see cref="SIOCINQ"/>, <see cref="SIOCOUTQ"/>, <see cref="SIOCOUTQNSD"/>).</summary>
    public static int QueuedBytes(FileDescriptor socket, int request)
    {
        int size = 0;
        if (LibC.ioctl(socket.Value, request, &size) != 0)
        {
            throw new NativeException($"ioctl({request:x})", LibC.errno);
        }
        return size;
    }

    /// <summary>ioctl(SIOCGSKNS): a descriptor of the network namespace the socket belongs to. Needs CAP_NET_ADMIN.</summary>
    public static FileDescriptor OpenNetworkNamespace(FileDescriptor socket)
    {
        const int SiocGetSocketNamespace = 0x894C;
        int fd = LibC.ioctl(socket.Value, SiocGetSocketNamespace);
        return fd >= 0 ? new FileDescriptor(fd) : throw new NativeException("ioctl(SIOCGSKNS)", LibC.errno);
    }

    // sockaddr_in: family, port (big-endian), address, padding; sockaddr_in6: family, port, flow info, address, scope id.
    internal const int InetAddressLength = 28;

    internal static int Encode(IPEndPoint address, Span<byte> raw)
    {
        raw.Clear();
        bool v6 = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
        BinaryPrimitives.WriteUInt16LittleEndian(raw, (ushort)(v6 ? LibC.AF_INET6 : LibC.AF_INET));
        BinaryPrimitives.WriteUInt16BigEndian(raw[2..], (ushort)address.Port);
        if (v6)
        {
            address.Address.TryWriteBytes(raw[8..24], out _);
            BinaryPrimitives.WriteUInt32LittleEndian(raw[24..], (uint)address.Address.ScopeId);
            return 28;
        }
        address.Address.TryWriteBytes(raw[4..8], out _);
        return 16;
    }

    private static IPEndPoint Decode(ReadOnlySpan<byte> raw)
    {
        int family = raw.Length >= 2 ? BinaryPrimitives.ReadUInt16LittleEndian(raw) : 0;
        int port = raw.Length >= 4 ? BinaryPrimitives.ReadUInt16BigEndian(raw[2..]) : 0;
        if (family == LibC.AF_INET && raw.Length >= 8)
        {
            return new IPEndPoint(new IPAddress(raw[4..8]), port);
        }
        if (family == LibC.AF_INET6 && raw.Length >= 28)
        {
            return new IPEndPoint(new IPAddress(raw[8..24], BinaryPrimitives.ReadUInt32LittleEndian(raw[24..])), port);
        }
        throw new InvalidDataException($"not an IPv4 or IPv6 socket address (family {family}, {raw.Length} bytes)");
    }

    public static void Listen(FileDescriptor socket, int backlog)
    {
        int errno = TryListen(socket, backlog);
        if (errno != 0)
        {
            throw new NativeException($"listen(backlog {backlog})", errno);
        }
    }

    /// <summary>listen(2); returns 0 or the errno (EADDRINUSE when another listener holds the port).</summary>
    public static int TryListen(FileDescriptor socket, int backlog) => LibC.listen(socket.Value, backlog) == 0 ? 0 : LibC.errno;

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
        int errno = TryShutdown(socket, how);
        if (errno != 0)
        {
            throw new NativeException($"shutdown({how})", errno);
        }
    }

    /// <summary>shutdown(2); returns 0 or the errno. On a socket that is not connected it says ENOTCONN, yet marks the socket shut down all the same.</summary>
    public static int TryShutdown(FileDescriptor socket, int how) => LibC.shutdown(socket.Value, how) == 0 ? 0 : LibC.errno;

    /// <summary>
    /// ioctl(SIOCUNIXFILE): an O_PATH descriptor of the file a socket is bound to, the way to learn whether that
    /// file still exists at its path and who owns it. Needs CAP_NET_ADMIN.
    /// </summary>
    public static FileDescriptor OpenBoundFile(FileDescriptor socket)
    {
        int fd = LibC.ioctl(socket.Value, LibC.SIOCPROTOPRIVATE); // SIOCUNIXFILE
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
