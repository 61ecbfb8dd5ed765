using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>getsockopt(2) and setsockopt(2) on sockets of this process.</summary>
public static unsafe class SocketOption
{
    public const int SOL_SOCKET = 1;
    public const int SO_REUSEADDR = 2, SO_DONTROUTE = 5, SO_BROADCAST = 6, SO_SNDBUF = 7, SO_RCVBUF = 8, SO_KEEPALIVE = 9;
    public const int SO_OOBINLINE = 10, SO_NO_CHECK = 11, SO_PRIORITY = 12, SO_LINGER = 13, SO_REUSEPORT = 15, SO_PASSCRED = 16;
    public const int SO_RCVLOWAT = 18, SO_RCVTIMEO = 20, SO_SNDTIMEO = 21, SO_GET_FILTER = 26, SO_SNDBUFFORCE = 32, SO_RCVBUFFORCE = 33;
    public const int SO_PASSSEC = 34, SO_MARK = 36, SO_PEEK_OFF = 42, SO_BUF_LOCK = 72;
    public const int SO_TYPE = 3, SO_BINDTODEVICE = 25, SO_PROTOCOL = 38, SO_DOMAIN = 39;

    public const int SOL_IP = 0, SOL_TCP = 6, SOL_UDP = 17, SOL_IPV6 = 41, SOL_ICMPV6 = 58, SOL_UDPLITE = 136, SOL_RAW = 255;
    public const int IP_TOS = 1, IP_TTL = 2, IP_HDRINCL = 3, IP_OPTIONS = 4, IP_PKTINFO = 8, IP_MTU_DISCOVER = 10, IP_RECVERR = 11;
    public const int IP_RECVTTL = 12, IP_RECVTOS = 13, IP_FREEBIND = 15, IP_TRANSPARENT = 19, IP_NODEFRAG = 22;
    public const int IP_MULTICAST_TTL = 33, IP_MULTICAST_LOOP = 34;
    public const int IPV6_CHECKSUM = 7, IPV6_UNICAST_HOPS = 16, IPV6_MTU_DISCOVER = 23, IPV6_RECVERR = 25, IPV6_HDRINCL = 36;
    public const int IPV6_V6ONLY = 26, IPV6_RECVPKTINFO = 49, IPV6_TCLASS = 67, IPV6_TRANSPARENT = 75, IPV6_FREEBIND = 78;
    public const int UDP_CORK = 1;

    /// <summary>A raw ICMP socket's filter of message types (one bit per type: 32 for ICMP at SOL_RAW, 256 for ICMPv6 at SOL_ICMPV6).</summary>
    public const int ICMP_FILTER = 1, ICMPV6_FILTER = 1;

    /// <summary>UDP-Lite's checksum coverage, sent and the least accepted (bytes; 0 is the whole datagram).</summary>
    public const int UDPLITE_SEND_CSCOV = 10, UDPLITE_RECV_CSCOV = 11;

    /// <summary>Netlink socket options (linux/netlink.h).</summary>
    public const int SOL_NETLINK = 270;
    public const int NETLINK_ADD_MEMBERSHIP = 1, NETLINK_PKTINFO = 3, NETLINK_BROADCAST_ERROR = 4, NETLINK_NO_ENOBUFS = 5;
    public const int NETLINK_LISTEN_ALL_NSID = 8, NETLINK_LIST_MEMBERSHIPS = 9, NETLINK_CAP_ACK = 10, NETLINK_EXT_ACK = 11, NETLINK_GET_STRICT_CHK = 12;
    public const int TCP_NODELAY = 1, TCP_MAXSEG = 2, TCP_CORK = 3, TCP_KEEPIDLE = 4, TCP_KEEPINTVL = 5, TCP_KEEPCNT = 6, TCP_INFO = 11;
    public const int TCP_CONGESTION = 13, TCP_USER_TIMEOUT = 18;

    /// <summary>TCP repair mode (linux/tcp.h): a socket whose state can be read and written directly, which sends nothing meanwhile.</summary>
    public const int TCP_REPAIR = 19, TCP_REPAIR_QUEUE = 20, TCP_QUEUE_SEQ = 21, TCP_REPAIR_OPTIONS = 22, TCP_TIMESTAMP = 24, TCP_REPAIR_WINDOW = 29;

    /// <summary>TCP_REPAIR values: on, off (the kernel then sends a window probe), off without the probe.</summary>
    public const int TCP_REPAIR_ON = 1, TCP_REPAIR_OFF = 0, TCP_REPAIR_OFF_NO_WP = -1;

    /// <summary>TCP_REPAIR_QUEUE values: which queue TCP_QUEUE_SEQ, recv(MSG_PEEK) and send act on.</summary>
    public const int TCP_NO_QUEUE = 0, TCP_RECV_QUEUE = 1, TCP_SEND_QUEUE = 2;

    public static int Get(FileDescriptor socket, int level, int name)
    {
        int value = 0;
        Get(socket, level, name, new Span<byte>(&value, sizeof(int)));
        return value;
    }

    /// <summary>Reads an option into <paramref name="value"/>; returns how many bytes the kernel wrote.</summary>
    public static int Get(FileDescriptor socket, int level, int name, Span<byte> value)
    {
        socklen_t length = (uint)value.Length;
        fixed (byte* p = value)
        {
            if (LibC.getsockopt(socket.Value, level, name, p, &length) != 0)
            {
                throw new NativeException($"getsockopt({level}, {name})", LibC.errno);
            }
        }
        return (int)(uint)length;
    }

    /// <summary>
    /// The classic BPF filter attached with SO_ATTACH_FILTER, one instruction per word as CRIU stores it (code,
    /// jt, jf, k from the top bits down); empty when none. SO_GET_FILTER counts in instructions, not bytes.
    /// </summary>
    public static ulong[] GetFilter(FileDescriptor socket)
    {
        socklen_t count = 0;
        if (LibC.getsockopt(socket.Value, SOL_SOCKET, SO_GET_FILTER, null, &count) != 0)
        {
            throw new NativeException("getsockopt(SO_GET_FILTER)", LibC.errno);
        }
        var instructions = new ulong[(int)(uint)count];
        fixed (ulong* p = instructions)
        {
            if (instructions.Length > 0 && LibC.getsockopt(socket.Value, SOL_SOCKET, SO_GET_FILTER, p, &count) != 0)
            {
                throw new NativeException("getsockopt(SO_GET_FILTER)", LibC.errno);
            }
        }
        // struct sock_filter is { u16 code; u8 jt; u8 jf; u32 k; }: little-endian in memory, reordered here.
        return instructions.Select(raw => ((raw & 0xFFFF) << 48) | (((raw >> 16) & 0xFF) << 40) | (((raw >> 24) & 0xFF) << 32) | (raw >> 32)).ToArray();
    }

    /// <summary>Attaches a classic BPF filter given as <see cref="GetFilter"/> returns it.</summary>
    public static void AttachFilter(FileDescriptor socket, IReadOnlyList<ulong> filter)
    {
        const int SoAttachFilter = 26;
        var raw = filter.Select(word => ((word >> 48) & 0xFFFF) | (((word >> 40) & 0xFF) << 16) | (((word >> 32) & 0xFF) << 24) | ((word & 0xFFFFFFFF) << 32)).ToArray();
        fixed (ulong* p = raw)
        {
            // struct sock_fprog: u16 len, padding, then the pointer.
            var program = stackalloc ulong[2];
            program[0] = (ulong)raw.Length;
            program[1] = (ulong)p;
            Set(socket, SOL_SOCKET, SoAttachFilter, new ReadOnlySpan<byte>(program, 16));
        }
    }

    /// <summary>A string option such as SO_BINDTODEVICE: empty when unset.</summary>
    public static string GetString(FileDescriptor socket, int level, int name)
    {
        Span<byte> value = stackalloc byte[64];
        int length = Get(socket, level, name, value);
        var text = value[..length];
        int end = text.IndexOf((byte)0);
        return System.Text.Encoding.UTF8.GetString(end < 0 ? text : text[..end]);
    }

    public static void Set(FileDescriptor socket, int level, int name, int value) =>
        Set(socket, level, name, new ReadOnlySpan<byte>(&value, sizeof(int)));

    public static void Set(FileDescriptor socket, int level, int name, ReadOnlySpan<byte> value)
    {
        fixed (byte* p = value)
        {
            if (LibC.setsockopt(socket.Value, level, name, p, (uint)value.Length) != 0)
            {
                throw new NativeException($"setsockopt({level}, {name})", LibC.errno);
            }
        }
    }
}
