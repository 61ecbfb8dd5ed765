using System.Buffers.Binary;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>Queries UNIX_DIAG over NETLINK_SOCK_DIAG and decodes its answers.</summary>
public static class UnixDiag
{
    // linux/unix_diag.h, which Tmds.LibC does not cover; the family is its LibC.AF_UNIX.
    private const uint ShowName = 1, ShowVfs = 2, ShowPeer = 4, ShowIcons = 8, ShowRqlen = 16;
    private const ushort AttrName = 0, AttrVfs = 1, AttrPeer = 2, AttrIcons = 3, AttrRqlen = 4, AttrShutdown = 6;
    private const int MessageLength = 16;

    /// <summary>Every AF_UNIX socket of this network namespace, by inode.</summary>
    public static Dictionary<uint, UnixDiagSocket> All()
    {
        var sockets = new Dictionary<uint, UnixDiagSocket>();
        using var diag = SockDiag.Open();
        int error = diag.Exchange(Request(0), dump: true, body => Add(sockets, Parse(body)));
        return error == 0 ? sockets : throw new NativeException("UNIX_DIAG dump", error);
    }

    /// <summary>One socket by inode, or null when this network namespace has no AF_UNIX socket with it.</summary>
    public static UnixDiagSocket? Find(uint inode)
    {
        UnixDiagSocket? found = null;
        using var diag = SockDiag.Open();
        int error = diag.Exchange(Request(inode), dump: false, body => found = Parse(body));
        return error switch
        {
            0 => found,
            Errno.ENOENT => null,
            _ => throw new NativeException($"UNIX_DIAG of socket:[{inode}]", error),
        };
    }

    private static void Add(Dictionary<uint, UnixDiagSocket> sockets, UnixDiagSocket socket) => sockets[socket.Inode] = socket;

    /// <summary>
    /// A unix_diag_req: every state, the attributes CriuPS reads, for one inode (0 with a dump: all). The cookie is
    /// INET_DIAG_NOCOOKIE, so that a lookup by inode alone is accepted.
    /// </summary>
    public static byte[] Request(uint inode)
    {
        var request = new byte[24];
        request[0] = (byte)LibC.AF_UNIX;
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(4), uint.MaxValue);
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(8), inode);
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(12), ShowName | ShowVfs | ShowPeer | ShowIcons | ShowRqlen);
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(16), uint.MaxValue);
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(20), uint.MaxValue);
        return request;
    }

    /// <summary>Decodes one unix_diag_msg and its attributes (a netlink message's payload).</summary>
    public static UnixDiagSocket Parse(ReadOnlySpan<byte> body)
    {
        if (body.Length < MessageLength || body[0] != LibC.AF_UNIX)
        {
            throw new InvalidDataException($"UNIX_DIAG: not a unix_diag_msg ({body.Length} bytes, family {(body.Length > 0 ? body[0] : -1)})");
        }
        int type = body[1];
        int state = body[2];
        uint inode = BinaryPrimitives.ReadUInt32LittleEndian(body[4..]);
        byte[] name = Array.Empty<byte>();
        uint vfsDevice = 0, vfsInode = 0, peer = 0, receive = 0, send = 0;
        uint[] icons = Array.Empty<uint>();
        int shutdown = 0;
        for (int offset = MessageLength; offset + 4 <= body.Length;)
        {
            int length = BinaryPrimitives.ReadUInt16LittleEndian(body[offset..]);
            ushort kind = BinaryPrimitives.ReadUInt16LittleEndian(body[(offset + 2)..]);
            if (length < 4 || offset + length > body.Length)
            {
                throw new InvalidDataException($"UNIX_DIAG: attribute {kind} of socket:[{inode}] claims {length} bytes at offset {offset} of {body.Length}");
            }
            var value = body.Slice(offset + 4, length - 4);
            switch (kind)
            {
                case AttrName:
                    name = value.ToArray();
                    break;
                case AttrVfs:
                    vfsInode = Word(value, 0, kind, inode);
                    vfsDevice = Word(value, 1, kind, inode);
                    break;
                case AttrPeer:
                    peer = Word(value, 0, kind, inode);
                    break;
                case AttrIcons:
                    icons = new uint[value.Length / 4];
                    for (int i = 0; i < icons.Length; i++)
                    {
                        icons[i] = BinaryPrimitives.ReadUInt32LittleEndian(value[(i * 4)..]);
                    }
                    break;
                case AttrRqlen:
                    receive = Word(value, 0, kind, inode);
                    send = Word(value, 1, kind, inode);
                    break;
                case AttrShutdown:
                    shutdown = value.Length > 0 ? value[0] : 0;
                    break;
            }
            offset += (length + 3) & ~3;
        }
        return new UnixDiagSocket(inode, type, state, name, vfsDevice, vfsInode, peer, icons, receive, send, shutdown);
    }

    private static uint Word(ReadOnlySpan<byte> value, int index, ushort kind, uint inode) =>
        value.Length >= (index + 1) * 4
            ? BinaryPrimitives.ReadUInt32LittleEndian(value[(index * 4)..])
            : throw new InvalidDataException($"UNIX_DIAG: attribute {kind} of socket:[{inode}] is {value.Length} bytes, too short");
}
