using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Interop;
using static CriuPS.Native.Interop.SocketOption;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// The IP-level (ip_opts_entry) and TCP-level (tcp_opts_entry) options of an IPv4 or IPv6 socket, the ones CRIU
/// saves and the way it saves them: a value is written only when it is not zero (so IP_TTL, which reads as the
/// system default when unset, is always written), and only written values are set again.
/// </summary>
internal static class InetSocketOptions
{
    public static IpOptsEntry DumpIp(FileDescriptor socket, int family)
    {
        var options = new IpOptsEntry();
        if (family == Socket.AF_INET6)
        {
            SetIfNonZero(Get(socket, SOL_IPV6, IPV6_FREEBIND), v => options.Freebind = v != 0);
            SetIfNonZero(Get(socket, SOL_IPV6, IPV6_RECVPKTINFO), v => options.Pktinfo = v != 0);
            return options;
        }
        SetIfNonZero(Get(socket, SOL_IP, IP_FREEBIND), v => options.Freebind = v != 0);
        SetIfNonZero(Get(socket, SOL_IP, IP_PKTINFO), v => options.Pktinfo = v != 0);
        SetIfNonZero(Get(socket, SOL_IP, IP_TOS), v => options.Tos = (uint)v);
        SetIfNonZero(Get(socket, SOL_IP, IP_TTL), v => options.Ttl = (uint)v);
        return options;
    }

    /// <summary>Sets the saved IP options; before bind, since IP_FREEBIND is what lets a socket bind an address this machine does not have (yet).</summary>
    public static void RestoreIp(FileDescriptor socket, int family, IpOptsEntry? options)
    {
        if (options is null)
        {
            return;
        }
        if (family == Socket.AF_INET6)
        {
            SetIf(socket, SOL_IPV6, IPV6_FREEBIND, options.HasFreebind, options.Freebind ? 1 : 0);
            SetIf(socket, SOL_IPV6, IPV6_RECVPKTINFO, options.HasPktinfo, options.Pktinfo ? 1 : 0);
            return;
        }
        SetIf(socket, SOL_IP, IP_FREEBIND, options.HasFreebind, options.Freebind ? 1 : 0);
        SetIf(socket, SOL_IP, IP_PKTINFO, options.HasPktinfo, options.Pktinfo ? 1 : 0);
        SetIf(socket, SOL_IP, IP_TOS, options.HasTos, (int)options.Tos);
        SetIf(socket, SOL_IP, IP_TTL, options.HasTtl, (int)options.Ttl);
    }

    public static TcpOptsEntry DumpTcp(FileDescriptor socket)
    {
        var options = new TcpOptsEntry();
        SetIfNonZero(Get(socket, SOL_TCP, TCP_NODELAY), v => options.Nodelay = v != 0);
        SetIfNonZero(Get(socket, SOL_TCP, TCP_CORK), v => options.Cork = v != 0);
        SetIfNonZero(Get(socket, SOL_TCP, TCP_KEEPCNT), v => options.Keepcnt = (uint)v);
        SetIfNonZero(Get(socket, SOL_TCP, TCP_KEEPIDLE), v => options.Keepidle = (uint)v);
        SetIfNonZero(Get(socket, SOL_TCP, TCP_KEEPINTVL), v => options.Keepintvl = (uint)v);
        return options;
    }

    public static void RestoreTcp(FileDescriptor socket, TcpOptsEntry? options)
    {
        if (options is null)
        {
            return;
        }
        SetIf(socket, SOL_TCP, TCP_NODELAY, options.HasNodelay, options.Nodelay ? 1 : 0);
        SetIf(socket, SOL_TCP, TCP_CORK, options.HasCork, options.Cork ? 1 : 0);
        SetIf(socket, SOL_TCP, TCP_KEEPCNT, options.HasKeepcnt, (int)options.Keepcnt);
        SetIf(socket, SOL_TCP, TCP_KEEPIDLE, options.HasKeepidle, (int)options.Keepidle);
        SetIf(socket, SOL_TCP, TCP_KEEPINTVL, options.HasKeepintvl, (int)options.Keepintvl);
    }

    private static void SetIfNonZero(int value, Action<int> save)
    {
        if (value != 0)
        {
            save(value);
        }
    }

    private static void SetIf(FileDescriptor socket, int level, int name, bool saved, int value)
    {
        if (saved)
        {
            Set(socket, level, name, value);
        }
    }
}
