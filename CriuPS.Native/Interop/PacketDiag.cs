using System.Buffers.Binary;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>Queries PACKET_DIAG over NETLINK_SOCK_DIAG (in the calling thread's network namespace) and decodes its answers.</summary>
public static class PacketDiag
{
    // linux/packet_diag.h, which Tmds.LibC does not cover; the family is its LibC.AF_PACKET.
    private const uint ShowInfo = 1, ShowMclist = 2, ShowRingCfg = 4, ShowFanout = 8;
    private const ushort AttrInfo = 0, AttrMclist = 1, AttrRxRing = 2, AttrTxRing = 3, AttrFanout = 4;
    private const int MessageLength = 16, MembershipLength = 44, RingLength = 28, MaxAddressLength = 32;

    /// <summary>Every packet socket of this network namespace, by inode (the kernel answers packet_diag dumps only).</summary>
    public static Dictionary<uint, PacketDiagSocket> All()
    {
        var request = new byte[20];
        request[0] = (byte)LibC.AF_PACKET;
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(8), ShowInfo | ShowMclist | ShowRingCfg | ShowFanout);
        var sockets = new Dictionary<uint, PacketDiagSocket>();
        using var diag = SockDiag.Open();
        int error = diag.Exchange(request, dump: true, body =>
        {
            var socket = Parse(body);
            sockets[socket.Inode] = socket;
        });
        return error == 0 ? sockets : throw new NativeException("PACKET_DIAG dump", error);
    }

    /// <summary>Decodes one packet_diag_msg and its attributes (a netlink message's payload).</summary>
    public static PacketDiagSocket Parse(ReadOnlySpan<byte> body)
    {
        if (body.Length < MessageLength || body[0] != LibC.AF_PACKET)
        {
            throw new InvalidDataException($"PACKET_DIAG: not a packet_diag_msg ({body.Length} bytes, family {(body.Length > 0 ? body[0] : -1)})");
        }
        int type = body[1];
        int protocol = BinaryPrimitives.ReadUInt16LittleEndian(body[2..]);
        uint inode = BinaryPrimitives.ReadUInt32LittleEndian(body[4..]);
        uint index = 0, version = 0, reserve = 0, copyThreshold = 0, timestamp = 0, flags = 0;
        uint? fanout = null;
        PacketDiagRing? rx = null, tx = null;
        var memberships = new List<PacketDiagMembership>();
        for (int offset = MessageLength; offset + 4 <= body.Length;)
        {
            int length = BinaryPrimitives.ReadUInt16LittleEndian(body[offset..]);
            ushort kind = BinaryPrimitives.ReadUInt16LittleEndian(body[(offset + 2)..]);
            if (length < 4 || offset + length > body.Length)
            {
                throw new InvalidDataException($"PACKET_DIAG: attribute {kind} of socket:[{inode}] claims {length} bytes at offset {offset} of {body.Length}");
            }
            var value = body.Slice(offset + 4, length - 4);
            switch (kind)
            {
                case AttrInfo:
                    index = Word(value, 0, kind, inode);
                    version = Word(value, 1, kind, inode);
                    reserve = Word(value, 2, kind, inode);
                    copyThreshold = Word(value, 3, kind, inode);
                    timestamp = Word(value, 4, kind, inode);
                    flags = Word(value, 5, kind, inode);
                    break;
                case AttrMclist:
                    for (int m = 0; m + MembershipLength <= value.Length; m += MembershipLength)
                    {
                        var one = value.Slice(m, MembershipLength);
                        int addressLength = Math.Min((int)BinaryPrimitives.ReadUInt16LittleEndian(one[10..]), MaxAddressLength);
                        memberships.Add(new PacketDiagMembership(BinaryPrimitives.ReadUInt32LittleEndian(one), BinaryPrimitives.ReadUInt32LittleEndian(one[4..]),
                            BinaryPrimitives.ReadUInt16LittleEndian(one[8..]), one.Slice(12, addressLength).ToArray()));
                    }
                    break;
                case AttrRxRing:
                    rx = Ring(value, kind, inode);
                    break;
                case AttrTxRing:
                    tx = Ring(value, kind, inode);
                    break;
                case AttrFanout:
                    fanout = Word(value, 0, kind, inode);
                    break;
            }
            offset += (length + 3) & ~3;
        }
        return new PacketDiagSocket(inode, type, protocol, index, version, reserve, copyThreshold, timestamp, flags, memberships, fanout, rx, tx);
    }

    private static PacketDiagRing Ring(ReadOnlySpan<byte> value, ushort kind, uint inode) =>
        value.Length >= RingLength
            ? new PacketDiagRing(Word(value, 0, kind, inode), Word(value, 1, kind, inode), Word(value, 2, kind, inode), Word(value, 3, kind, inode),
                Word(value, 4, kind, inode), Word(value, 5, kind, inode), Word(value, 6, kind, inode))
            : throw new InvalidDataException($"PACKET_DIAG: ring attribute {kind} of socket:[{inode}] is {value.Length} bytes, too short");

    private static uint Word(ReadOnlySpan<byte> value, int index, ushort kind, uint inode) =>
        value.Length >= (index + 1) * 4
            ? BinaryPrimitives.ReadUInt32LittleEndian(value[(index * 4)..])
            : throw new InvalidDataException($"PACKET_DIAG: attribute {kind} of socket:[{inode}] is {value.Length} bytes, too short");
}
