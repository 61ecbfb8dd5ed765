using CriuPS.Engine.Errors;
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
        SetIfNonZero(Get(socket, SOL_TCP, TCP_USER_TIMEOUT), v => options.CriupsUserTimeout = (uint)v);
        options.CriupsCongestion = GetString(socket, SOL_TCP, TCP_CONGESTION);
        return options;
    }

    /// <param name="shown">The socket as errors name it.</param>
    /// <param name="images">The image directory, which errors about a refused value name.</param>
    public static void RestoreTcp(FileDescriptor socket, TcpOptsEntry? options, string shown, string images)
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
        if (options.HasCriupsUserTimeout && !TrySet(socket, TCP_USER_TIMEOUT, BitConverter.GetBytes(options.CriupsUserTimeout)))
        {
            throw ImageDamage.In(System.IO.Path.Combine(images, "files.img"),
                $"the TCP_USER_TIMEOUT of the {shown} ({options.CriupsUserTimeout} ms) is refused by the kernel.");
        }
        // The machine's default is left alone: a socket that never chose one keeps the default of where it is now.
        if (options.HasCriupsCongestion && options.CriupsCongestion != GetString(socket, SOL_TCP, TCP_CONGESTION)
            && !TrySet(socket, TCP_CONGESTION, System.Text.Encoding.UTF8.GetBytes(options.CriupsCongestion)))
        {
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"The {shown} used the TCP congestion control '{options.CriupsCongestion}', which this machine does not offer (net.ipv4.tcp_available_congestion_control).",
                shown, $"Load the module of '{options.CriupsCongestion}' (modprobe tcp_{options.CriupsCongestion}), then restore again.");
        }
    }

    private static bool TrySet(FileDescriptor socket, int name, byte[] value)
    {
        try
        {
            Set(socket, SOL_TCP, name, value);
            return true;
        }
        catch (NativeException)
        {
            return false;
        }
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
