using System.Net;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Resources.Sockets;
using CriuPS.Native.Interop;
using Tmds.Linux;
using static CriuPS.Native.Interop.SocketOption;

namespace CriuPS.Engine.Tests.Sockets;

/// <summary>
/// TCP repair and the network lock on a real connection in a private network namespace: a connection with data
/// queued every way (received and unread, sent and unacknowledged, not sent yet) is saved, its socket closed,
/// rebuilt on a new socket and resumed; its peer, which never noticed, must get every byte once and in order.
/// The unacknowledged part is made certain by dropping the peer's packets (its acknowledgements) for a while.
/// </summary>
public sealed class TcpConnectionTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public void TableNameIsCriusCutToItsLength()
    {
        Assert.Equal("CRIU-0a1b2c3d-4e5f-6789-ab", NetworkLock.TableName("0a1b2c3d-4e5f-6789-abcd-ef0123456789"));
        Assert.Equal("CRIU-1234", NetworkLock.TableName("1234"));
    }

    [Fact]
    public void RebuildsAConnectionWithEveryQueueAndItsPeerCarriesOn()
    {
        PrivateNetwork.Run(() =>
        {
            var clientData = Pattern(100_000, 1);
            var serverData = Pattern(300_000, 7);
            using var listener = Socket.Create(LibC.AF_INET, LibC.SOCK_STREAM, LibC.IPPROTO_TCP);
            Assert.Equal(0, Socket.TryBind(listener, new IPEndPoint(IPAddress.Loopback, 0)));
            Socket.Listen(listener, 4);
            using var client = Socket.Create(LibC.AF_INET, LibC.SOCK_STREAM, LibC.IPPROTO_TCP);
            Set(client, LibC.SOL_SOCKET, LibC.SO_RCVBUF, 16_384); // a small window: the server cannot send everything at once
            Assert.Equal(Errno.EINPROGRESS, Socket.TryConnect(client, Socket.LocalAddress(listener)));
            var server = Until(() => TryAccept(listener), "the connection to be accepted");
            Set(server, LibC.SOL_SOCKET, LibC.SO_SNDBUF, 1 << 20);

            SendAll(client, clientData);
            Until(() => Socket.QueuedBytes(server, Socket.SIOCINQ) == clientData.Length, "the client's data to wait in the server");
            int clientPort = Socket.LocalAddress(client).Port;
            Nftables.Run($"add table inet criups-test\nadd chain inet criups-test out {{ type filter hook output priority 0; }}\nadd rule inet criups-test out tcp sport {clientPort} drop\n");
            int queued = (int)SocketMessage.TrySend(server, serverData, default);
            Until(() => Socket.QueuedBytes(server, Socket.SIOCOUTQNSD) < queued, "part of the server's data to go out");
            Thread.Sleep(100);

            var local = Socket.LocalAddress(server);
            var remote = Socket.PeerAddress(server)!;
            using var ns = NetworkNamespace.OfSocket(server);
            var locked = NetworkLock.Engage(Guid.NewGuid().ToString(), [new LockedConnection(ns, local, remote)], CheckpointErrorKind.DumpFailed, ownedBySession: true);
            var (entry, queues, state) = TcpConnection.Dump(server, "the test connection");
            server.Dispose(); // in repair mode: gone without a word to the client

            Assert.Equal((uint)clientData.Length, entry.InqLen);
            Assert.Equal((uint)queued, entry.OutqLen);
            Assert.InRange(entry.UnsqLen, 1u, entry.OutqLen - 1); // some sent and unacknowledged, some never sent
            Assert.Equal(clientData, queues[..clientData.Length]);
            Assert.Equal(serverData[..queued], queues[clientData.Length..]);

            Nftables.Run("delete table inet criups-test\n");
            using var restored = Socket.Create(LibC.AF_INET, LibC.SOCK_STREAM, LibC.IPPROTO_TCP);
            TcpConnection.Restore(restored, ns, local, remote, state, entry, queues, "the test connection");
            locked.Release();
            TcpConnection.Resume(restored, reuseAddress: false);

            Assert.Equal(serverData[..queued], Receive(client, queued));
            Assert.Equal(clientData, Receive(restored, clientData.Length));
            SendAll(restored, "after"u8.ToArray());
            SendAll(client, "again"u8.ToArray());
            Assert.Equal("after"u8.ToArray(), Receive(client, 5));
            Assert.Equal("again"u8.ToArray(), Receive(restored, 5));
        });
    }

    /// <summary>
    /// Half-closed connections, each state made for real: shutdown(2) on either end, with one direction's packets
    /// dropped where a FIN must stay unacknowledged. Each end must then read the other's bytes and, where the other
    /// end had shut down, the end of the stream; an end not shut down must still send.
    /// </summary>
    [Theory]
    [InlineData(InetSocketInfo.CloseWait)]
    [InlineData(InetSocketInfo.FinWait1)]
    [InlineData(InetSocketInfo.FinWait2)]
    [InlineData(InetSocketInfo.LastAck)]
    [InlineData(InetSocketInfo.Closing)]
    public void RebuildsAHalfClosedConnection(int wanted)
    {
        PrivateNetwork.Run(() =>
        {
            var clientData = Pattern(20_000, 3);
            var serverData = Pattern(30_000, 5);
            using var listener = Socket.Create(LibC.AF_INET, LibC.SOCK_STREAM, LibC.IPPROTO_TCP);
            Assert.Equal(0, Socket.TryBind(listener, new IPEndPoint(IPAddress.Loopback, 0)));
            Socket.Listen(listener, 4);
            using var client = Socket.Create(LibC.AF_INET, LibC.SOCK_STREAM, LibC.IPPROTO_TCP);
            Socket.TryConnect(client, Socket.LocalAddress(listener));
            var server = Until(() => TryAccept(listener), "the connection to be accepted");
            SendAll(client, clientData);
            SendAll(server, serverData);
            Until(() => Socket.QueuedBytes(server, Socket.SIOCINQ) == clientData.Length, "the client's data to wait in the server");

            bool clientShut = wanted is InetSocketInfo.CloseWait or InetSocketInfo.LastAck or InetSocketInfo.Closing;
            bool serverShut = wanted != InetSocketInfo.CloseWait;
            if (wanted is InetSocketInfo.CloseWait or InetSocketInfo.LastAck)
            {
                Socket.Shutdown(client, 1);
                WaitForState(server, InetSocketInfo.CloseWait);
            }
            // Our FIN stays unacknowledged when the client's packets are dropped; the client's FIN can still reach a
            // server in FIN_WAIT1 whose own packets are dropped (CLOSING).
            int dropped = wanted switch
            {
                InetSocketInfo.FinWait1 or InetSocketInfo.LastAck => Socket.LocalAddress(client).Port,
                InetSocketInfo.Closing => Socket.LocalAddress(server).Port,
                _ => 0,
            };
            if (dropped != 0)
            {
                Nftables.Run($"add table inet criups-test\nadd chain inet criups-test out {{ type filter hook output priority 0; }}\nadd rule inet criups-test out tcp sport {dropped} drop\n");
            }
            if (serverShut)
            {
                Socket.Shutdown(server, 1);
            }
            if (wanted == InetSocketInfo.Closing)
            {
                WaitForState(server, InetSocketInfo.FinWait1);
                Socket.Shutdown(client, 1);
            }
            WaitForState(server, wanted);

            var local = Socket.LocalAddress(server);
            var remote = Socket.PeerAddress(server)!;
            using var ns = NetworkNamespace.OfSocket(server);
            var locked = NetworkLock.Engage(Guid.NewGuid().ToString(), [new LockedConnection(ns, local, remote)], CheckpointErrorKind.DumpFailed, ownedBySession: true);
            var (entry, queues, state) = TcpConnection.Dump(server, "the test connection");
            server.Dispose();
            Assert.Equal(wanted, state);
            Assert.Equal((uint)clientData.Length, entry.InqLen);

            if (dropped != 0)
            {
                Nftables.Run("delete table inet criups-test\n");
            }
            using var restored = Socket.Create(LibC.AF_INET, LibC.SOCK_STREAM, LibC.IPPROTO_TCP);
            TcpConnection.Restore(restored, ns, local, remote, state, entry, queues, "the test connection");
            Assert.Equal(wanted, TcpState(restored));
            locked.Release();
            TcpConnection.Resume(restored, reuseAddress: false);

            Assert.Equal(serverData, Receive(client, serverData.Length));
            Assert.Equal(clientData, Receive(restored, clientData.Length));
            if (serverShut)
            {
                AssertEnd(client);
            }
            else
            {
                SendAll(restored, "after"u8.ToArray());
                Assert.Equal("after"u8.ToArray(), Receive(client, 5));
            }
            if (clientShut)
            {
                AssertEnd(restored);
            }
            else
            {
                SendAll(client, "again"u8.ToArray());
                Assert.Equal("again"u8.ToArray(), Receive(restored, 5));
            }
        });
    }

    [Fact]
    public void SockDiagReportsAListenersBacklogAndAConnectedUdpSocket()
    {
        PrivateNetwork.Run(() =>
        {
            using var listener = Socket.Create(LibC.AF_INET6, LibC.SOCK_STREAM, LibC.IPPROTO_TCP);
            Assert.Equal(0, Socket.TryBind(listener, new IPEndPoint(IPAddress.IPv6Loopback, 0)));
            Socket.Listen(listener, 7);
            using var udp = Socket.Create(LibC.AF_INET, LibC.SOCK_DGRAM, LibC.IPPROTO_UDP);
            Assert.Equal(0, Socket.TryConnect(udp, new IPEndPoint(IPAddress.Loopback, 9)));

            var all = InetDiag.All();

            var tcp = all[(uint)FileStatus.Of(listener).Inode];
            Assert.Equal(10, tcp.State);
            Assert.Equal(7u, tcp.SendQueue);
            Assert.Equal(Socket.LocalAddress(listener), tcp.Local);
            var connected = all[(uint)FileStatus.Of(udp).Inode];
            Assert.Equal(1, connected.State);
            Assert.Equal(new IPEndPoint(IPAddress.Loopback, 9), connected.Remote);
        });
    }

    private static int TcpState(FileDescriptor socket)
    {
        Span<byte> info = stackalloc byte[8];
        Get(socket, LibC.SOL_TCP, LibC.TCP_INFO, info);
        return info[0];
    }

    private static void WaitForState(FileDescriptor socket, int state) =>
        Until(() => TcpState(socket) == state, $"the server's connection to reach {InetSocketInfo.StateName(state)}");

    // The end of the stream: recv gives 0 bytes.
    private static void AssertEnd(FileDescriptor socket) => Until(() => ReceiveOne(socket) == 0, "the end of the stream");

    private static unsafe long ReceiveOne(FileDescriptor socket)
    {
        byte one;
        return (long)LibC.recv(socket.Value, &one, 1, 0x40 /* MSG_DONTWAIT */);
    }

    private static byte[] Pattern(int length, int seed) => Enumerable.Range(0, length).Select(i => (byte)(i * seed + i / 251)).ToArray();

    private static FileDescriptor? TryAccept(FileDescriptor listener)
    {
        try
        {
            return Socket.Accept(listener);
        }
        catch (NativeException e) when (e.Errno == Errno.EAGAIN)
        {
            return null;
        }
    }

    private static T Until<T>(Func<T?> probe, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            var value = probe();
            if (value is not null && !(value is bool done && !done))
            {
                return value;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"waited in vain for {what}");
            }
            Thread.Sleep(5);
        }
    }

    private static void SendAll(FileDescriptor socket, byte[] data)
    {
        int done = 0;
        Until(() =>
        {
            long sent = SocketMessage.TrySend(socket, data.AsSpan(done), default);
            done += sent > 0 ? (int)sent : 0;
            return done == data.Length;
        }, $"{data.Length} bytes to be sent");
    }

    private static unsafe byte[] Receive(FileDescriptor socket, int length)
    {
        var data = new byte[length];
        int done = 0;
        Until(() =>
        {
            fixed (byte* p = data)
            {
                long got = (long)LibC.recv(socket.Value, p + done, (size_t)(ulong)(length - done), 0x40 /* MSG_DONTWAIT */);
                done += got > 0 ? (int)got : 0;
            }
            return done == length;
        }, $"{length} bytes to arrive");
        return data;
    }
}
