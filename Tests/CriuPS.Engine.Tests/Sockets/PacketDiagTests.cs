using System.Buffers.Binary;
using CriuPS.Native.Interop;
using static CriuPS.Engine.Tests.Sockets.DiagMessages;
using Tmds.Linux;

namespace CriuPS.Engine.Tests.Sockets;

/// <summary>The sock_diag client for packet sockets: decoding of PACKET_DIAG answers, built by hand and asked of the kernel about our own socket.</summary>
public sealed class PacketDiagTests
{
    private const int Raw = 3;

    // A packet_diag_msg with its attributes, as the kernel lays them out (little-endian, attributes 4-aligned).
    private static byte[] Message(byte type, ushort protocol, uint inode, params (ushort Kind, byte[] Value)[] attributes)
    {
        var header = new List<byte> { 17, type };
        header.AddRange(BitConverter.GetBytes(protocol));
        header.AddRange(BitConverter.GetBytes(inode));
        header.AddRange(new byte[8]); // cookie
        return Build(header, attributes);
    }

    [Fact]
    public void ParsesInfoMembershipsRingsAndFanout()
    {
        var membership = new byte[44];
        BinaryPrimitives.WriteUInt32LittleEndian(membership, 1);
        BinaryPrimitives.WriteUInt32LittleEndian(membership.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt16LittleEndian(membership.AsSpan(8), 2);
        BinaryPrimitives.WriteUInt16LittleEndian(membership.AsSpan(10), 6);
        new byte[] { 1, 0, 0x5e, 0, 0, 1 }.CopyTo(membership, 12);
        var socket = PacketDiag.Parse(Message(Raw, 3, 777,
            (0, Words(1, 1, 32, 0, 1, PacketDiagSocket.FlagRunning | PacketDiagSocket.FlagAuxData | PacketDiagSocket.FlagLoss)),
            (1, membership),
            (2, Words(4096, 4, 2048, 8, 0, 0, 0)),
            (3, Words(4096, 2, 2048, 4, 0, 0, 0)),
            (4, Words(4242 | (1u << 16)))));
        Assert.Equal((777u, Raw, 3), (socket.Inode, socket.Type, socket.Protocol));
        Assert.Equal((1u, 1u, 32u, 1u), (socket.InterfaceIndex, socket.Version, socket.Reserve, socket.Timestamp));
        Assert.Equal(PacketDiagSocket.FlagRunning | PacketDiagSocket.FlagAuxData | PacketDiagSocket.FlagLoss, socket.Flags);
        var joined = Assert.Single(socket.Memberships);
        Assert.Equal((1u, 1u, (ushort)2), (joined.InterfaceIndex, joined.Count, joined.Type));
        Assert.Equal(new byte[] { 1, 0, 0x5e, 0, 0, 1 }, joined.Address);
        Assert.Equal(new PacketDiagRing(4096, 4, 2048, 8, 0, 0, 0), socket.ReceiveRing);
        Assert.Equal(new PacketDiagRing(4096, 2, 2048, 4, 0, 0, 0), socket.TransmitRing);
        Assert.Equal(4242u | (1u << 16), socket.Fanout);
    }

    [Fact]
    public void ASocketWithoutRingsOrFanoutHasNone()
    {
        var socket = PacketDiag.Parse(Message(2, 0x800, 9, (0, Words(0, 0, 0, 0, 0, 0))));
        Assert.Null(socket.ReceiveRing);
        Assert.Null(socket.TransmitRing);
        Assert.Null(socket.Fanout);
        Assert.Empty(socket.Memberships);
    }

    [Fact]
    public void RefusesAnAttributeLongerThanTheMessage()
    {
        var body = Message(Raw, 3, 5, (2, Words(4096, 4, 2048, 8, 0, 0, 0)));
        BinaryPrimitives.WriteUInt16LittleEndian(body.AsSpan(16), 200);
        Assert.Throws<InvalidDataException>(() => PacketDiag.Parse(body));
    }

    [Fact]
    public void TheKernelReportsOurSocketsRingAndVersion()
    {
        using var socket = Socket.Create(LibC.AF_PACKET, Raw, System.Net.IPAddress.HostToNetworkOrder((short)3) & 0xffff);
        SocketOption.Set(socket, LibC.SOL_PACKET, LibC.PACKET_VERSION, 1);
        SocketOption.Set(socket, LibC.SOL_PACKET, LibC.PACKET_RX_RING, PacketSocket.Ring(4096, 2, 2048, 4, 0, 0, 0));
        var inode = (uint)FileStatus.Of(socket).Inode;

        var found = PacketDiag.All()[inode];
        Assert.Equal((Raw, 3, 1u), (found.Type, found.Protocol, found.Version));
        Assert.Equal(new PacketDiagRing(4096, 2, 2048, 4, 0, 0, 0), found.ReceiveRing);
        Assert.Null(found.TransmitRing);
    }
}
