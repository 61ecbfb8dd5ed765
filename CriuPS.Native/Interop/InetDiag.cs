using System.Buffers.Binary;
using System.Net;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>Queries INET_DIAG over NETLINK_SOCK_DIAG (in the calling thread's network namespace) and decodes its answers.</summary>
public static class InetDiag
{
    private const ushort AttrShutdown = 8;
    private const int RequestLength = 56, MessageLength = 72;

    /// <summary>Every TCP and UDP socket, IPv4 and IPv6, of the calling thread's network namespace, by inode.</summary>
    public static Dictionary<uint, InetDiagSocket> All()
    {
        var sockets = new Dictionary<uint, InetDiagSocket>();
        using var diag = SockDiag.Open();
        foreach (int family in new[] { LibC.AF_INET, LibC.AF_INET6 })
        {
            foreach (int protocol in new[] { LibC.IPPROTO_TCP, LibC.IPPROTO_UDP })
            {
                int error = diag.Exchange(Request(family, protocol), dump: true, body =>
                {
                    var socket = Parse(body, protocol);
                    // Request sockets and TIME_WAIT leftovers have no inode: they belong to no process.
                    if (socket.Inode != 0)
                    {
                        sockets[socket.Inode] = socket;
                    }
                });
                // ENOENT: this kernel has no sock_diag handler for the protocol (udp_diag not built): none to list.
                if (error != 0 && error != Errno.ENOENT)
                {
                    throw new NativeException($"INET_DIAG dump of {(family == LibC.AF_INET ? "IPv4" : "IPv6")} {(protocol == LibC.IPPROTO_TCP ? "TCP" : "UDP")} sockets", error);
                }
            }
        }
        return sockets;
    }

    /// <summary>An inet_diag_req_v2 asking for every socket of one family and protocol, in every state.</summary>
    public static byte[] Request(int family, int protocol)
    {
        var request = new byte[RequestLength];
        request[0] = (byte)family;
        request[1] = (byte)protocol;
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(4), uint.MaxValue);
        return request;
    }

    /// <summary>Decodes one inet_diag_msg and its attributes (a netlink message's payload).</summary>
    public static InetDiagSocket Parse(ReadOnlySpan<byte> body, int protocol)
    {
        if (body.Length < MessageLength || (body[0] != LibC.AF_INET && body[0] != LibC.AF_INET6))
        {
            throw new InvalidDataException($"INET_DIAG: not an inet_diag_msg ({body.Length} bytes, family {(body.Length > 0 ? body[0] : -1)})");
        }
        int family = body[0];
        int state = body[1];
        var local = Endpoint(family, body.Slice(8, 16), BinaryPrimitives.ReadUInt16BigEndian(body[4..]));
        var remote = Endpoint(family, body.Slice(24, 16), BinaryPrimitives.ReadUInt16BigEndian(body[6..]));
        uint receive = BinaryPrimitives.ReadUInt32LittleEndian(body[56..]);
        uint send = BinaryPrimitives.ReadUInt32LittleEndian(body[60..]);
        uint inode = BinaryPrimitives.ReadUInt32LittleEndian(body[68..]);
        int shutdown = 0;
        for (int offset = MessageLength; offset + 4 <= body.Length;)
        {
            int length = BinaryPrimitives.ReadUInt16LittleEndian(body[offset..]);
            ushort kind = BinaryPrimitives.ReadUInt16LittleEndian(body[(offset + 2)..]);
            if (length < 4 || offset + length > body.Length)
            {
                throw new InvalidDataException($"INET_DIAG: attribute {kind} of socket:[{inode}] claims {length} bytes at offset {offset} of {body.Length}");
            }
            if (kind == AttrShutdown && length > 4)
            {
                shutdown = body[offset + 4];
            }
            offset += (length + 3) & ~3;
        }
        return new InetDiagSocket(inode, family, protocol, state, local, remote, receive, send, shutdown);
    }

    private static IPEndPoint Endpoint(int family, ReadOnlySpan<byte> address, int port) =>
        new(new IPAddress(family == LibC.AF_INET ? address[..4] : address), port);
}
