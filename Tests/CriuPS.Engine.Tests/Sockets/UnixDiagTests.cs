using System.Buffers.Binary;
using System.Text;
using CriuPS.Native.Interop;
using static CriuPS.Engine.Tests.Sockets.DiagMessages;
using Tmds.Linux;

namespace CriuPS.Engine.Tests.Sockets;

/// <summary>The sock_diag client: decoding of UNIX_DIAG answers, built by hand and asked of the kernel about our own sockets.</summary>
public sealed class UnixDiagTests
{
    private const int Stream = 1, Datagram = 2;

    // A unix_diag_msg with its attributes, as the kernel lays them out (little-endian, attributes 4-aligned).
    private static byte[] Message(byte type, byte state, uint inode, params (ushort Kind, byte[] Value)[] attributes)
    {
        var header = new List<byte> { 1, type, state, 0 };
        header.AddRange(BitConverter.GetBytes(inode));
        header.AddRange(new byte[8]); // cookie
        return Build(header, attributes);
    }

    [Fact]
    public void ParsesEveryAttributeCriuPSAsksFor()
    {
        var name = Encoding.UTF8.GetBytes("/run/app.sock\0");
        var body = Message(Stream, 10, 4242,
            (0, name),
            (1, Words(77, 0xFE00000)),
            (2, Words(0)),
            (3, Words(11, 12, 0)),
            (4, Words(3, 128)),
            (6, new byte[] { 2 }),
            (7, Words(1000))); // UNIX_DIAG_UID: not asked for, skipped

        var socket = UnixDiag.Parse(body);

        Assert.Equal(4242u, socket.Inode);
        Assert.Equal(Stream, socket.Type);
        Assert.True(socket.IsListening);
        Assert.Equal(name, socket.Name);
        Assert.Equal(77u, socket.BoundInode);
        Assert.Equal(0xFE00000u, socket.BoundDevice);
        Assert.Equal(new uint[] { 11, 12, 0 }, socket.PendingConnections);
        Assert.Equal(3u, socket.ReceiveQueue);
        Assert.Equal(128u, socket.SendQueue);
        Assert.Equal(UnixDiagSocket.ShutdownWrite, socket.Shutdown);
    }

    [Fact]
    public void AnUnnamedSocketWithoutAttributesHasEmptyValues()
    {
        var socket = UnixDiag.Parse(Message(Datagram, 7, 9));

        Assert.Empty(socket.Name);
        Assert.Empty(socket.PendingConnections);
        Assert.Equal(0u, socket.Peer);
        Assert.Equal(UnixDiagSocket.StateClose, socket.State);
    }

    [Fact]
    public void RefusesAnAttributeRunningPastTheMessage()
    {
        var body = Message(Stream, 1, 5, (2, Words(6)));
        BinaryPrimitives.WriteUInt16LittleEndian(body.AsSpan(16), 40);

        var error = Assert.Throws<InvalidDataException>(() => UnixDiag.Parse(body));
        Assert.Contains("socket:[5]", error.Message);
    }

    [Fact]
    public void RefusesAnAttributeTooShortForItsValue()
    {
        Assert.Throws<InvalidDataException>(() => UnixDiag.Parse(Message(Stream, 1, 5, (4, Words(1)))));
    }

    [Fact]
    public void RefusesAMessageOfAnotherFamily()
    {
        var body = Message(Stream, 1, 5);
        body[0] = 2;
        Assert.Throws<InvalidDataException>(() => UnixDiag.Parse(body));
    }

    private static byte[] Netlink(ushort type, uint sequence, byte[] payload)
    {
        var message = new byte[16 + ((payload.Length + 3) & ~3)];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)(16 + payload.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(4), type);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(8), sequence);
        payload.CopyTo(message, 16);
        return message;
    }

    [Fact]
    public void SplitsAnswersUntilDoneAndSkipsOtherSequences()
    {
        var datagram = Netlink(20, 7, Message(Stream, 1, 1))
            .Concat(Netlink(20, 6, Message(Stream, 1, 2)))
            .Concat(Netlink(20, 7, Message(Stream, 1, 3)))
            .Concat(Netlink(SockDiag.NlmsgDone, 7, new byte[4]))
            .ToArray();
        var seen = new List<uint>();

        var (done, errno) = SockDiag.Split(datagram, 7, body => seen.Add(UnixDiag.Parse(body).Inode));

        Assert.True(done);
        Assert.Equal(0, errno);
        Assert.Equal(new uint[] { 1, 3 }, seen);
    }

    [Fact]
    public void ReturnsTheErrnoOfAnErrorAnswer()
    {
        var (done, errno) = SockDiag.Split(Netlink(SockDiag.NlmsgError, 1, Words(unchecked((uint)-Errno.ENOENT))), 1, _ => Assert.Fail("no answer expected"));

        Assert.True(done);
        Assert.Equal(Errno.ENOENT, errno);
    }

    [Fact]
    public void RefusesAMessageLongerThanTheDatagram()
    {
        var datagram = Netlink(20, 1, Message(Stream, 1, 1));
        BinaryPrimitives.WriteUInt32LittleEndian(datagram, 4096);

        Assert.Throws<InvalidDataException>(() => SockDiag.Split(datagram, 1, _ => { }));
    }

    private static uint Inode(FileDescriptor socket) => (uint)FileStatus.Of(socket).Inode;

    [Fact]
    public void TheKernelReportsBothEndsOfASocketpairWithWhatWaitsInThem()
    {
        var (first, second) = Socket.Pair(Stream);
        using (first)
        using (second)
        {
            Assert.Equal(5, SocketMessage.TrySend(first, "hello"u8, default));
            Socket.Shutdown(first, 1); // SHUT_WR

            var a = UnixDiag.Find(Inode(first))!;
            var b = UnixDiag.Find(Inode(second))!;

            Assert.Equal(Inode(second), a.Peer);
            Assert.Equal(Inode(first), b.Peer);
            Assert.Equal(UnixDiagSocket.StateEstablished, b.State);
            Assert.Equal(5u, b.ReceiveQueue);
            Assert.Equal(UnixDiagSocket.ShutdownWrite, a.Shutdown);
            Assert.Equal(UnixDiagSocket.ShutdownRead, b.Shutdown);
            Assert.True(UnixDiag.All().ContainsKey(a.Inode));
        }
    }

    [Fact]
    public void TheKernelListsAConnectionNotYetAcceptedAsTheListenersAndNotAsAPeer()
    {
        var name = Encoding.ASCII.GetBytes($"\0criups-test-diag-{Environment.ProcessId}");
        using var listener = Socket.Create(Stream);
        using var client = Socket.Create(Stream);
        Assert.Equal(0, Socket.TryBind(listener, name));
        Socket.Listen(listener, 4);
        Assert.Equal(0, Socket.TryConnect(client, name));

        var listening = UnixDiag.Find(Inode(listener))!;
        var connecting = UnixDiag.Find(Inode(client))!;

        Assert.Equal(name, listening.Name);
        Assert.Equal(new[] { Inode(client) }, listening.PendingConnections);
        Assert.Equal(4u, listening.SendQueue); // the backlog
        Assert.Equal(0u, connecting.Peer);
    }

    [Fact]
    public void AnInodeThatIsNoUnixSocketIsNotFound()
    {
        Assert.Null(UnixDiag.Find(1));
    }

    [Fact]
    public void ControlMessagesAreSplitAtTheirAlignedLengths()
    {
        var control = new byte[16 + 16 + 16 + 12 + 4];
        BinaryPrimitives.WriteUInt64LittleEndian(control, 20); // SCM_RIGHTS with one fd, padded to 24
        BinaryPrimitives.WriteInt32LittleEndian(control.AsSpan(8), 1);
        BinaryPrimitives.WriteInt32LittleEndian(control.AsSpan(12), LibC.SCM_RIGHTS);
        BinaryPrimitives.WriteInt32LittleEndian(control.AsSpan(16), 7);
        BinaryPrimitives.WriteUInt64LittleEndian(control.AsSpan(24), 28); // SCM_CREDENTIALS
        BinaryPrimitives.WriteInt32LittleEndian(control.AsSpan(32), 1);
        BinaryPrimitives.WriteInt32LittleEndian(control.AsSpan(36), LibC.SCM_CREDENTIALS);
        BinaryPrimitives.WriteInt32LittleEndian(control.AsSpan(40), 1234);

        var messages = SocketMessage.ParseControl(control.AsSpan(0, 52));

        Assert.Equal(2, messages.Count);
        Assert.Equal(LibC.SCM_RIGHTS, messages[0].Type);
        Assert.Equal(7, BinaryPrimitives.ReadInt32LittleEndian(messages[0].Data));
        Assert.Equal(LibC.SCM_CREDENTIALS, messages[1].Type);
        Assert.Equal(12, messages[1].Data.Length);
        Assert.Equal(1234, BinaryPrimitives.ReadInt32LittleEndian(messages[1].Data));
    }

    [Fact]
    public void APeekOfAStreamFindsWhereTheSegmentCarryingDescriptorsBegins()
    {
        var (sender, receiver) = Socket.Pair(Stream);
        using (sender)
        using (receiver)
        using (var carried = FileDescriptor.Open("/dev/null", O.RDONLY))
        {
            Send(sender, "file", carried.Value);
            Send(sender, "plain", -1);
            Send(sender, "more", -1);
            Send(sender, "pipe", carried.Value);
            SocketOption.Set(receiver, LibC.SOL_SOCKET, LibC.SO_PEEK_OFF, 4);

            var glued = SocketMessage.Peek(receiver, new byte[64])!.Value;
            SocketMessage.CloseRights(glued.Control);
            SocketOption.Set(receiver, LibC.SOL_SOCKET, LibC.SO_PEEK_OFF, 4);
            int whole = SocketMessage.PeekWholeSegments(receiver, glued.Length - 1);

            Assert.Equal(13, glued.Length); // "plainmorepipe", with the descriptor of "pipe"
            Assert.Contains(glued.Control, c => c.Type == LibC.SCM_RIGHTS);
            Assert.Equal(9, whole); // "plainmore": "pipe" begins there
            SocketOption.Set(receiver, LibC.SOL_SOCKET, LibC.SO_PEEK_OFF, 0);
            var first = SocketMessage.Peek(receiver, new byte[64])!.Value;
            SocketMessage.CloseRights(first.Control);
            Assert.Equal(4, first.Length); // nothing was taken
        }

        static void Send(FileDescriptor socket, string data, int fd) =>
            Assert.Equal(data.Length, SocketMessage.TrySend(socket, Encoding.ASCII.GetBytes(data), default, fd < 0 ? default : new[] { fd }));
    }
}
