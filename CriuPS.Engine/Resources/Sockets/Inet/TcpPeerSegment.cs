using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using CriuPS.Native.Interop;
using static CriuPS.Native.Interop.SocketOption;
using Socket = CriuPS.Native.Interop.Socket;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// A TCP segment forged as if the peer had sent it, as CRIU's libsoccr does, to rebuild what repair mode cannot set
/// directly: the peer's FIN already received (CLOSE_WAIT, LAST_ACK, CLOSING), or its acknowledgement of our own FIN
/// (FIN_WAIT2). It goes out on a raw socket in the connection's network namespace, marked 0xc114 (SOCCR_MARK) so that
/// the network lock lets it through, and is delivered locally.
/// </summary>
internal static class TcpPeerSegment
{
    public const uint SoccrMark = 0xC114;
    private const byte Fin = 0x01, Ack = 0x10;
    private const int HeaderLength = 20, Ipv4HeaderLength = 20;

    /// <summary>Sends, from <paramref name="peer"/> to <paramref name="local"/>, an ACK (with FIN when <paramref name="fin"/>).</summary>
    /// <param name="window">The window the peer advertises, in its own scaled units.</param>
    public static void Send(NetworkNamespace ns, IPEndPoint peer, IPEndPoint local, uint sequence, uint acknowledgement, ushort window, bool fin, string describe)
    {
        (peer, local) = (InetImageAddress.Unmapped(peer), InetImageAddress.Unmapped(local));
        bool v4 = peer.AddressFamily == AddressFamily.InterNetwork;
        var tcp = new byte[HeaderLength];
        BinaryPrimitives.WriteUInt16BigEndian(tcp, (ushort)peer.Port);
        BinaryPrimitives.WriteUInt16BigEndian(tcp.AsSpan(2), (ushort)local.Port);
        BinaryPrimitives.WriteUInt32BigEndian(tcp.AsSpan(4), sequence);
        BinaryPrimitives.WriteUInt32BigEndian(tcp.AsSpan(8), acknowledgement);
        tcp[12] = HeaderLength / 4 << 4;
        tcp[13] = (byte)(Ack | (fin ? Fin : 0));
        BinaryPrimitives.WriteUInt16BigEndian(tcp.AsSpan(14), window);
        FileDescriptor raw;
        using (ns.Enter())
        {
            raw = Socket.Create(v4 ? LibC.AF_INET : LibC.AF_INET6, LibC.SOCK_RAW, LibC.IPPROTO_TCP);
        }
        using (raw)
        {
            Set(raw, LibC.SOL_SOCKET, LibC.SO_MARK, (int)SoccrMark);
            byte[] packet;
            if (v4)
            {
                // The IPv4 header is ours (the peer's address as source); the kernel fills in its length, id and checksum.
                Set(raw, LibC.SOL_IP, LibC.IP_HDRINCL, 1);
                BinaryPrimitives.WriteUInt16BigEndian(tcp.AsSpan(16), Checksum(peer.Address, local.Address, tcp));
                packet = new byte[Ipv4HeaderLength + tcp.Length];
                packet[0] = 0x45;
                packet[8] = 64;
                packet[9] = (byte)LibC.IPPROTO_TCP;
                peer.Address.TryWriteBytes(packet.AsSpan(12, 4), out _);
                local.Address.TryWriteBytes(packet.AsSpan(16, 4), out _);
                tcp.CopyTo(packet, Ipv4HeaderLength);
            }
            else
            {
                // IPv6 raw sockets build the header: bind the peer's address (free-bind: it need not be ours), and
                // let the kernel put the checksum at offset 16 of the TCP header.
                Set(raw, LibC.SOL_IPV6, LibC.IPV6_FREEBIND, 1);
                Set(raw, LibC.SOL_IPV6, LibC.IPV6_CHECKSUM, 16);
                int bound = Socket.TryBind(raw, new IPEndPoint(peer.Address, 0));
                if (bound != 0)
                {
                    throw new NativeException($"bind of a raw socket to {peer.Address} for the {describe}", bound);
                }
                packet = tcp;
            }
            long sent = SocketMessage.TrySendTo(raw, packet, new IPEndPoint(local.Address, 0));
            if (sent != packet.Length)
            {
                throw new NativeException($"sendto of the peer's {(fin ? "FIN" : "ACK")} for the {describe}", sent < 0 ? (int)-sent : Errno.EIO);
            }
        }
    }

    // The TCP checksum over the IPv4 pseudo-header (addresses, protocol, length) and the segment.
    private static ushort Checksum(IPAddress source, IPAddress destination, ReadOnlySpan<byte> segment)
    {
        Span<byte> pseudo = stackalloc byte[12];
        source.TryWriteBytes(pseudo, out _);
        destination.TryWriteBytes(pseudo[4..], out _);
        pseudo[9] = (byte)LibC.IPPROTO_TCP;
        BinaryPrimitives.WriteUInt16BigEndian(pseudo[10..], (ushort)segment.Length);
        uint sum = Sum(pseudo) + Sum(segment);
        while (sum >> 16 != 0)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        return (ushort)~sum;
    }

    private static uint Sum(ReadOnlySpan<byte> bytes)
    {
        uint sum = 0;
        for (int i = 0; i + 1 < bytes.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(bytes[i..]);
        }
        return bytes.Length % 2 == 1 ? sum + (uint)(bytes[^1] << 8) : sum;
    }
}
