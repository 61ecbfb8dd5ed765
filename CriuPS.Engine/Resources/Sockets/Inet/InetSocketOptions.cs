using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Interop;
using static CriuPS.Native.Interop.SocketOption;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// The IP-level (ip_opts_entry, with a raw socket's ip_opts_raw_entry) and TCP-level (tcp_opts_entry) options of an
/// IPv4 or IPv6 socket, the ones CRIU saves and the way it saves them: a value is written only when it is not zero
/// (so IP_TTL, which reads as the system default when unset, is always written), and only written values are set
/// again. Options CRIU does not save (IP_RECVERR, IP_TRANSPARENT, IP_OPTIONS...) go into CriuPS fields the same way,
/// and so does a UDP-Lite socket's checksum coverage.
/// </summary>
internal static class InetSocketOptions
{
    /// <summary>Most bytes of IP options an IPv4 header carries (IP_OPTIONS).</summary>
    public const int MaxIpOptionsLength = 40;

    /// <summary>Words of a raw ICMP socket's filter: 32 message types for ICMP, 256 for ICMPv6.</summary>
    public static int IcmpFilterWords(int family) => family == LibC.AF_INET6 ? 8 : 1;

    public static IpOptsEntry DumpIp(FileDescriptor socket, int family, int type, int protocol)
    {
        var options = new IpOptsEntry();
        if (type == LibC.SOCK_RAW)
        {
            options.Raw = DumpRaw(socket, family, protocol);
        }
        if (family == LibC.AF_INET6)
        {
            SetIfNonZero(Get(socket, LibC.SOL_IPV6, LibC.IPV6_FREEBIND), v => options.Freebind = v != 0);
            SetIfNonZero(Get(socket, LibC.SOL_IPV6, LibC.IPV6_RECVPKTINFO), v => options.Pktinfo = v != 0);
            SetIfNonZero(Get(socket, LibC.SOL_IPV6, LibC.IPV6_RECVERR), v => options.CriupsRecverr = v != 0);
            SetIfNonZero(Get(socket, LibC.SOL_IPV6, LibC.IPV6_TRANSPARENT), v => options.CriupsTransparent = v != 0);
            options.CriupsMtuDiscover = (uint)Get(socket, LibC.SOL_IPV6, LibC.IPV6_MTU_DISCOVER);
            options.CriupsUnicastHops = (uint)Get(socket, LibC.SOL_IPV6, LibC.IPV6_UNICAST_HOPS);
            options.CriupsTclass = (uint)Get(socket, LibC.SOL_IPV6, LibC.IPV6_TCLASS);
            return options;
        }
        SetIfNonZero(Get(socket, LibC.SOL_IP, LibC.IP_FREEBIND), v => options.Freebind = v != 0);
        SetIfNonZero(Get(socket, LibC.SOL_IP, LibC.IP_PKTINFO), v => options.Pktinfo = v != 0);
        SetIfNonZero(Get(socket, LibC.SOL_IP, LibC.IP_TOS), v => options.Tos = (uint)v);
        SetIfNonZero(Get(socket, LibC.SOL_IP, LibC.IP_TTL), v => options.Ttl = (uint)v);
        SetIfNonZero(Get(socket, LibC.SOL_IP, LibC.IP_RECVERR), v => options.CriupsRecverr = v != 0);
        SetIfNonZero(Get(socket, LibC.SOL_IP, LibC.IP_TRANSPARENT), v => options.CriupsTransparent = v != 0);
        SetIfNonZero(Get(socket, LibC.SOL_IP, LibC.IP_RECVTTL), v => options.CriupsRecvttl = v != 0);
        SetIfNonZero(Get(socket, LibC.SOL_IP, LibC.IP_RECVTOS), v => options.CriupsRecvtos = v != 0);
        // Written whatever their value: their defaults (want, 1, on) are not 0. A stream socket has no multicast.
        options.CriupsMtuDiscover = (uint)Get(socket, LibC.SOL_IP, LibC.IP_MTU_DISCOVER);
        if (type != LibC.SOCK_STREAM)
        {
            options.CriupsMulticastTtl = (uint)Get(socket, LibC.SOL_IP, LibC.IP_MULTICAST_TTL);
            options.CriupsMulticastLoop = Get(socket, LibC.SOL_IP, LibC.IP_MULTICAST_LOOP) != 0;
        }
        Span<byte> ipOptions = stackalloc byte[MaxIpOptionsLength];
        int length = Get(socket, LibC.SOL_IP, LibC.IP_OPTIONS, ipOptions);
        if (length > 0)
        {
            options.CriupsOptions = Google.Protobuf.ByteString.CopyFrom(ipOptions[..length]);
        }
        return options;
    }

    // As CRIU: the header-included flag, IPv4's no-defragmentation flag and an ICMP socket's filter.
    private static IpOptsRawEntry DumpRaw(FileDescriptor socket, int family, int protocol)
    {
        var raw = new IpOptsRawEntry();
        SetIfNonZero(Get(socket, family == LibC.AF_INET6 ? LibC.SOL_IPV6 : LibC.SOL_IP, family == LibC.AF_INET6 ? LibC.IPV6_HDRINCL : LibC.IP_HDRINCL), v => raw.Hdrincl = v != 0);
        if (family == LibC.AF_INET)
        {
            SetIfNonZero(Get(socket, LibC.SOL_IP, LibC.IP_NODEFRAG), v => raw.Nodefrag = v != 0);
        }
        if (protocol == LibC.IPPROTO_ICMP || protocol == LibC.IPPROTO_ICMPV6)
        {
            Span<uint> filter = stackalloc uint[IcmpFilterWords(family)];
            Get(socket, family == LibC.AF_INET6 ? LibC.SOL_ICMPV6 : LibC.SOL_RAW, family == LibC.AF_INET6 ? ICMPV6_FILTER : ICMP_FILTER, System.Runtime.InteropServices.MemoryMarshal.AsBytes(filter));
            foreach (uint word in filter)
            {
                raw.IcmpvFilter.Add(word);
            }
        }
        return raw;
    }

    /// <summary>Sets the saved IP options; before bind, since IP_FREEBIND and IP_TRANSPARENT are what let a socket bind an address this machine does not have (yet).</summary>
    public static void RestoreIp(FileDescriptor socket, int family, IpOptsEntry? options)
    {
        if (options is null)
        {
            return;
        }
        if (options.Raw is { } raw)
        {
            RestoreRaw(socket, family, raw);
        }
        if (family == LibC.AF_INET6)
        {
            SetIf(socket, LibC.SOL_IPV6, LibC.IPV6_FREEBIND, options.HasFreebind, options.Freebind ? 1 : 0);
            SetIf(socket, LibC.SOL_IPV6, LibC.IPV6_RECVPKTINFO, options.HasPktinfo, options.Pktinfo ? 1 : 0);
            SetIf(socket, LibC.SOL_IPV6, LibC.IPV6_RECVERR, options.HasCriupsRecverr, options.CriupsRecverr ? 1 : 0);
            SetIf(socket, LibC.SOL_IPV6, LibC.IPV6_TRANSPARENT, options.HasCriupsTransparent, options.CriupsTransparent ? 1 : 0);
            SetIf(socket, LibC.SOL_IPV6, LibC.IPV6_MTU_DISCOVER, options.HasCriupsMtuDiscover, (int)options.CriupsMtuDiscover);
            SetIf(socket, LibC.SOL_IPV6, LibC.IPV6_UNICAST_HOPS, options.HasCriupsUnicastHops, (int)options.CriupsUnicastHops);
            SetIf(socket, LibC.SOL_IPV6, LibC.IPV6_TCLASS, options.HasCriupsTclass, (int)options.CriupsTclass);
            return;
        }
        SetIf(socket, LibC.SOL_IP, LibC.IP_FREEBIND, options.HasFreebind, options.Freebind ? 1 : 0);
        SetIf(socket, LibC.SOL_IP, LibC.IP_PKTINFO, options.HasPktinfo, options.Pktinfo ? 1 : 0);
        SetIf(socket, LibC.SOL_IP, LibC.IP_TOS, options.HasTos, (int)options.Tos);
        SetIf(socket, LibC.SOL_IP, LibC.IP_TTL, options.HasTtl, (int)options.Ttl);
        SetIf(socket, LibC.SOL_IP, LibC.IP_RECVERR, options.HasCriupsRecverr, options.CriupsRecverr ? 1 : 0);
        SetIf(socket, LibC.SOL_IP, LibC.IP_TRANSPARENT, options.HasCriupsTransparent, options.CriupsTransparent ? 1 : 0);
        SetIf(socket, LibC.SOL_IP, LibC.IP_RECVTTL, options.HasCriupsRecvttl, options.CriupsRecvttl ? 1 : 0);
        SetIf(socket, LibC.SOL_IP, LibC.IP_RECVTOS, options.HasCriupsRecvtos, options.CriupsRecvtos ? 1 : 0);
        SetIf(socket, LibC.SOL_IP, LibC.IP_MTU_DISCOVER, options.HasCriupsMtuDiscover, (int)options.CriupsMtuDiscover);
        SetIf(socket, LibC.SOL_IP, LibC.IP_MULTICAST_TTL, options.HasCriupsMulticastTtl, (int)options.CriupsMulticastTtl);
        SetIf(socket, LibC.SOL_IP, LibC.IP_MULTICAST_LOOP, options.HasCriupsMulticastLoop, options.CriupsMulticastLoop ? 1 : 0);
        if (options.HasCriupsOptions)
        {
            Set(socket, LibC.SOL_IP, LibC.IP_OPTIONS, options.CriupsOptions.Span);
        }
    }

    private static void RestoreRaw(FileDescriptor socket, int family, IpOptsRawEntry raw)
    {
        SetIf(socket, family == LibC.AF_INET6 ? LibC.SOL_IPV6 : LibC.SOL_IP, family == LibC.AF_INET6 ? LibC.IPV6_HDRINCL : LibC.IP_HDRINCL, raw.HasHdrincl, raw.Hdrincl ? 1 : 0);
        if (family == LibC.AF_INET)
        {
            SetIf(socket, LibC.SOL_IP, LibC.IP_NODEFRAG, raw.HasNodefrag, raw.Nodefrag ? 1 : 0);
        }
        if (raw.IcmpvFilter.Count > 0)
        {
            var filter = raw.IcmpvFilter.ToArray();
            Set(socket, family == LibC.AF_INET6 ? LibC.SOL_ICMPV6 : LibC.SOL_RAW, family == LibC.AF_INET6 ? ICMPV6_FILTER : ICMP_FILTER, System.Runtime.InteropServices.MemoryMarshal.AsBytes(filter.AsSpan()));
        }
    }

    /// <summary>A UDP-Lite socket's checksum coverage, sent and required (CriuPS fields: CRIU keeps neither).</summary>
    public static void DumpUdpLite(FileDescriptor socket, InetSkEntry entry)
    {
        entry.CriupsUdpliteSendCscov = (uint)Get(socket, SOL_UDPLITE, UDPLITE_SEND_CSCOV);
        entry.CriupsUdpliteRecvCscov = (uint)Get(socket, SOL_UDPLITE, UDPLITE_RECV_CSCOV);
    }

    public static void RestoreUdpLite(FileDescriptor socket, InetSkEntry entry)
    {
        SetIf(socket, SOL_UDPLITE, UDPLITE_SEND_CSCOV, entry.HasCriupsUdpliteSendCscov, (int)entry.CriupsUdpliteSendCscov);
        SetIf(socket, SOL_UDPLITE, UDPLITE_RECV_CSCOV, entry.HasCriupsUdpliteRecvCscov, (int)entry.CriupsUdpliteRecvCscov);
    }

    public static TcpOptsEntry DumpTcp(FileDescriptor socket)
    {
        var options = new TcpOptsEntry();
        SetIfNonZero(Get(socket, LibC.SOL_TCP, LibC.TCP_NODELAY), v => options.Nodelay = v != 0);
        SetIfNonZero(Get(socket, LibC.SOL_TCP, LibC.TCP_CORK), v => options.Cork = v != 0);
        SetIfNonZero(Get(socket, LibC.SOL_TCP, LibC.TCP_KEEPCNT), v => options.Keepcnt = (uint)v);
        SetIfNonZero(Get(socket, LibC.SOL_TCP, LibC.TCP_KEEPIDLE), v => options.Keepidle = (uint)v);
        SetIfNonZero(Get(socket, LibC.SOL_TCP, LibC.TCP_KEEPINTVL), v => options.Keepintvl = (uint)v);
        SetIfNonZero(Get(socket, LibC.SOL_TCP, LibC.TCP_USER_TIMEOUT), v => options.CriupsUserTimeout = (uint)v);
        options.CriupsCongestion = GetString(socket, LibC.SOL_TCP, LibC.TCP_CONGESTION);
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
        SetIf(socket, LibC.SOL_TCP, LibC.TCP_NODELAY, options.HasNodelay, options.Nodelay ? 1 : 0);
        SetIf(socket, LibC.SOL_TCP, LibC.TCP_CORK, options.HasCork, options.Cork ? 1 : 0);
        SetIf(socket, LibC.SOL_TCP, LibC.TCP_KEEPCNT, options.HasKeepcnt, (int)options.Keepcnt);
        SetIf(socket, LibC.SOL_TCP, LibC.TCP_KEEPIDLE, options.HasKeepidle, (int)options.Keepidle);
        SetIf(socket, LibC.SOL_TCP, LibC.TCP_KEEPINTVL, options.HasKeepintvl, (int)options.Keepintvl);
        if (options.HasCriupsUserTimeout && !TrySet(socket, LibC.TCP_USER_TIMEOUT, BitConverter.GetBytes(options.CriupsUserTimeout)))
        {
            throw ImageDamage.In(System.IO.Path.Combine(images, "files.img"),
                $"the TCP_USER_TIMEOUT of the {shown} ({options.CriupsUserTimeout} ms) is refused by the kernel.");
        }
        // The machine's default is left alone: a socket that never chose one keeps the default of where it is now.
        if (options.HasCriupsCongestion && options.CriupsCongestion != GetString(socket, LibC.SOL_TCP, LibC.TCP_CONGESTION)
            && !TrySet(socket, LibC.TCP_CONGESTION, System.Text.Encoding.UTF8.GetBytes(options.CriupsCongestion)))
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
            Set(socket, LibC.SOL_TCP, name, value);
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
