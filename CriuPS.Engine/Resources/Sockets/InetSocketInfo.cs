using System.Buffers.Binary;
using System.Net;
using CriuPS.Native.Interop;
using static CriuPS.Native.Interop.SocketOption;

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

    public bool IsTcp => Type == Socket.SOCK_STREAM && Protocol == Socket.IPPROTO_TCP;

    public bool IsUdp => Type == Socket.SOCK_DGRAM && Protocol == Socket.IPPROTO_UDP;

    /// <summary>A TCP socket with a peer (what CRIU calls a connection, saved with TCP repair): dst_port is not 0.</summary>
    public bool IsConnection => IsTcp && Remote is not null;

    public static InetSocketInfo Of(FileDescriptor socket)
    {
        int family = Get(socket, SOL_SOCKET, SO_DOMAIN);
        int type = Get(socket, SOL_SOCKET, SO_TYPE);
        int protocol = Get(socket, SOL_SOCKET, SO_PROTOCOL);
        var local = Socket.LocalAddress(socket);
        var remote = Socket.PeerAddress(socket);
        int state = remote is null ? Close : Established, acceptQueue = 0;
        if (type == Socket.SOCK_STREAM && protocol == Socket.IPPROTO_TCP)
        {
            Span<byte> info = stackalloc byte[32];
            Get(socket, SOL_TCP, TCP_INFO, info);
            state = info[0];
            // A connection that was reset keeps its peer's name but is over: it comes back as a closed socket.
            remote = state == Close ? null : remote;
            // For a listener, tcpi_unacked counts the connections done and not yet accepted.
            acceptQueue = state == Listen ? (int)BinaryPrimitives.ReadUInt32LittleEndian(info[24..]) : 0;
        }
        return new InetSocketInfo(family, type, protocol, state, local, remote, acceptQueue);
    }

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
        string kind = (type, protocol) switch
        {
            (Socket.SOCK_STREAM, Socket.IPPROTO_TCP) => "TCP",
            (Socket.SOCK_DGRAM, Socket.IPPROTO_UDP) => "UDP",
            _ => $"{(family == Socket.AF_INET6 ? "IPv6" : "IPv4")} socket of type {type} and protocol {protocol},",
        };
        bool tcp = kind == "TCP";
        if (remote is not null)
        {
            return tcp ? $"TCP connection {local} to {remote} ({StateName(state)})" : $"{kind} socket {local} connected to {remote}";
        }
        if (tcp && state == Listen)
        {
            return $"TCP socket listening on {local}";
        }
        return local.Port != 0 ? $"{kind} socket bound to {local}" : $"{kind} socket (unbound, {(family == Socket.AF_INET6 ? "IPv6" : "IPv4")})";
    }
}
