using System.Buffers.Binary;
using System.Net;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using static CriuPS.Native.Interop.SocketOption;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// What an IPv4 or IPv6 socket is, read from our own descriptor of it: family, type and protocol, the addresses it
/// is bound and connected to, its TCP state, and for a listener the connections waiting to be accepted. Unlike
/// sock_diag, this sees sockets that are only bound, or not even bound (CRIU's "unconnected" sockets), too.
/// </summary>
internal sealed record InetSocketInfo(int Family, int Type, int Protocol, int State, IPEndPoint Local, IPEndPoint? Remote, int AcceptQueue)
{
    /// <summary>TCP states (include/net/tcp_states.h); a UDP socket counts as established when connected.</summary>
    public const int Established = 1, SynSent = 2, SynRecv = 3, FinWait1 = 4, FinWait2 = 5, TimeWait = 6, Close = 7, CloseWait = 8, LastAck = 9, Listen = 10, Closing = 11;

    public bool IsTcp => Type == LibC.SOCK_STREAM && Protocol == LibC.IPPROTO_TCP;

    public bool IsUdp => Type == LibC.SOCK_DGRAM && Protocol == LibC.IPPROTO_UDP;

    public bool IsUdpLite => Type == LibC.SOCK_DGRAM && Protocol == LibC.IPPROTO_UDPLITE;

    /// <summary>An ICMP "ping" socket (SOCK_DGRAM with IPPROTO_ICMP or IPPROTO_ICMPV6): its port is its echo identifier.</summary>
    public bool IsPing => IsPingSocket(Type, Protocol);

    /// <summary>A raw socket (SOCK_RAW) of any IP protocol: its port, as the kernel reports it, is that protocol.</summary>
    public bool IsRaw => Type == LibC.SOCK_RAW;

    /// <summary>Whether CriuPS saves and restores sockets of this type and protocol.</summary>
    public bool IsSupported => IsTcp || IsUdp || IsUdpLite || IsPing || IsRaw;

    public static bool IsPingSocket(int type, int protocol) =>
        type == LibC.SOCK_DGRAM && (protocol == LibC.IPPROTO_ICMP || protocol == LibC.IPPROTO_ICMPV6);

    /// <summary>A TCP socket with a peer (what CRIU calls a connection, saved with TCP repair): dst_port is not 0.</summary>
    public bool IsConnection => IsTcp && Remote is not null;

    public static InetSocketInfo Of(FileDescriptor socket)
    {
        int family = Get(socket, LibC.SOL_SOCKET, LibC.SO_DOMAIN);
        int type = Get(socket, LibC.SOL_SOCKET, LibC.SO_TYPE);
        int protocol = Get(socket, LibC.SOL_SOCKET, LibC.SO_PROTOCOL);
        var local = Socket.LocalAddress(socket);
        var remote = Socket.PeerAddress(socket);
        int state = remote is null ? Close : Established, acceptQueue = 0;
        if (type == LibC.SOCK_STREAM && protocol == LibC.IPPROTO_TCP)
        {
            Span<byte> info = stackalloc byte[32];
            Get(socket, LibC.SOL_TCP, LibC.TCP_INFO, info);
            state = info[0];
            // A connection that was reset keeps its peer's name but is over: it comes back as a closed socket.
            remote = state == Close ? null : remote;
            // For a listener, tcpi_unacked counts the connections done and not yet accepted.
            acceptQueue = state == Listen ? (int)BinaryPrimitives.ReadUInt32LittleEndian(info[24..]) : 0;
        }
        else if (remote is null && (type == LibC.SOCK_RAW || IsPingSocket(type, protocol)))
        {
            remote = DatagramPeer(socket, family, type);
            state = remote is null ? Close : Established;
        }
        return new InetSocketInfo(family, type, protocol, state, local, remote, acceptQueue);
    }

    // A raw or ping socket connected with port 0 hides its peer from getpeername: its namespace's table shows it.
    private static IPEndPoint? DatagramPeer(FileDescriptor socket, int family, int type)
    {
        string table = (type == LibC.SOCK_RAW ? "raw" : "icmp") + (family == LibC.AF_INET6 ? "6" : "");
        using var ns = NetworkNamespace.OfSocket(socket);
        using (ns.Enter())
        {
            return ProcNetSocket.Find(table, FileStatus.Of(socket).Inode) is { State: Established } entry ? new IPEndPoint(entry.Remote, 0) : null;
        }
    }

    public static bool IsAny(IPAddress address) => address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any);

    public static string StateName(int state) => state switch
    {
        Established => "established",
        SynSent => "connecting, SYN_SENT",
        SynRecv => "SYN_RECV",
        FinWait1 => "closing, FIN_WAIT1",
        FinWait2 => "closing, FIN_WAIT2",
        TimeWait => "TIME_WAIT",
        Close => "closed",
        CloseWait => "closed by the peer, CLOSE_WAIT",
        LastAck => "closing, LAST_ACK",
        Listen => "listening",
        Closing => "closing, CLOSING",
        _ => $"state {state}",
    };

    /// <summary>"TCP connection 127.0.0.1:6379 to 127.0.0.1:50122 (established)", "UDP socket bound to [::]:5353"...: how messages name it.</summary>
    public string Describe() => Describe(Family, Type, Protocol, State, Local, Remote);

    public static string Describe(int family, int type, int protocol, int state, IPEndPoint local, IPEndPoint? remote)
    {
        string ip = family == LibC.AF_INET6 ? "IPv6" : "IPv4";
        if (type == LibC.SOCK_RAW)
        {
            // The port of a raw socket is its protocol: only the addresses say something.
            string raw = $"raw {ip} socket of protocol {protocol}";
            string bound = IsAny(local.Address) ? "" : $" bound to {local.Address}";
            return remote is null ? raw + bound : $"{raw}{bound} connected to {remote.Address}";
        }
        string kind = type == LibC.SOCK_STREAM && protocol == LibC.IPPROTO_TCP ? "TCP"
            : type == LibC.SOCK_DGRAM && protocol == LibC.IPPROTO_UDP ? "UDP"
            : type == LibC.SOCK_DGRAM && protocol == LibC.IPPROTO_UDPLITE ? "UDP-Lite"
            : IsPingSocket(type, protocol) ? "ICMP (ping)"
            : $"{ip} socket of type {type} and protocol {protocol},";
        bool tcp = kind == "TCP";
        if (remote is not null)
        {
            return tcp ? $"TCP connection {local} to {remote} ({StateName(state)})" : $"{kind} socket {local} connected to {remote}";
        }
        if (tcp && state == Listen)
        {
            return $"TCP socket listening on {local}";
        }
        return local.Port != 0 ? $"{kind} socket bound to {local}" : $"{kind} socket (unbound, {ip})";
    }
}
