using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>getsockopt(2) and setsockopt(2) on sockets of this process.</summary>
public static unsafe class SocketOption
{
    // The levels and options Tmds.LibC has no name for; the others are Tmds.LibC's (LibC.SOL_SOCKET, LibC.SO_MARK,
    // LibC.TCP_REPAIR...).
    public const int SO_BUF_LOCK = 72;
    public const int SOL_UDP = 17, SOL_UDPLITE = 136;
    public const int UDP_CORK = 1;

    /// <summary>A raw ICMP socket's filter of message types (one bit per type: 32 for ICMP at SOL_RAW, 256 for ICMPv6 at SOL_ICMPV6).</summary>
    public const int ICMP_FILTER = 1, ICMPV6_FILTER = 1;

    /// <summary>UDP-Lite's checksum coverage, sent and the least accepted (bytes; 0 is the whole datagram).</summary>
    public const int UDPLITE_SEND_CSCOV = 10, UDPLITE_RECV_CSCOV = 11;

    /// <summary>Netlink socket options (linux/netlink.h), at LibC.SOL_NETLINK.</summary>
    public const int NETLINK_ADD_MEMBERSHIP = 1, NETLINK_PKTINFO = 3, NETLINK_BROADCAST_ERROR = 4, NETLINK_NO_ENOBUFS = 5;
    public const int NETLINK_LISTEN_ALL_NSID = 8, NETLINK_LIST_MEMBERSHIPS = 9, NETLINK_CAP_ACK = 10, NETLINK_EXT_ACK = 11, NETLINK_GET_STRICT_CHK = 12;

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
        if (LibC.getsockopt(socket.Value, LibC.SOL_SOCKET, LibC.SO_GET_FILTER, null, &count) != 0)
        {
            throw new NativeException("getsockopt(SO_GET_FILTER)", LibC.errno);
        }
        var instructions = new ulong[(int)(uint)count];
        fixed (ulong* p = instructions)
        {
            if (instructions.Length > 0 && LibC.getsockopt(socket.Value, LibC.SOL_SOCKET, LibC.SO_GET_FILTER, p, &count) != 0)
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
        var raw = filter.Select(word => ((word >> 48) & 0xFFFF) | (((word >> 40) & 0xFF) << 16) | (((word >> 32) & 0xFF) << 24) | ((word & 0xFFFFFFFF) << 32)).ToArray();
        fixed (ulong* p = raw)
        {
            // struct sock_fprog: u16 len, padding, then the pointer.
            var program = stackalloc ulong[2];
            program[0] = (ulong)raw.Length;
            program[1] = (ulong)p;
            Set(socket, LibC.SOL_SOCKET, LibC.SO_ATTACH_FILTER, new ReadOnlySpan<byte>(program, 16));
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
