using System.Buffers.Binary;
using System.Net;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.RemoteSyscall;
using static CriuPS.Native.Interop.SocketOption;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// A TCP connection, established or half-closed, saved and rebuilt through the kernel's TCP repair mode, as CRIU's
/// libsoccr does (tcp-stream-&lt;inode&gt;.img: a tcp_stream_entry followed by the receive queue and the send
/// queue). In repair mode a socket sends nothing and its state can be read and written directly: the sequence
/// numbers of both queues, the queued bytes (peeked, never taken), MSS, window scaling, SACK and timestamps, the
/// timestamp clock, the windows. Restore binds and "connects" a new socket in repair mode (no handshake), sets the
/// sequence numbers, fills the queues (the send queue's sent part as sent, its unsent part as unsent) and the
/// options, puts the FINs of a half-closed connection back (ours with shutdown(2), the peer's with a forged segment,
/// <see cref="TcpPeerSegment"/>), and leaves it in repair mode until the network lock is released.
/// </summary>
internal static class TcpConnection
{
    // tcpi_options bits (TCPI_OPT_*) and TCP option codes for TCP_REPAIR_OPTIONS (TCPOPT_*).
    private const uint OptTimestamps = 1, OptSack = 2, OptWscale = 4;
    private const uint TcpOptMaxSeg = 2, TcpOptWindow = 3, TcpOptSackPermitted = 4, TcpOptTimestamp = 8;

    // The kernel may refuse to queue a large chunk at once (a linear buffer that big): halve down to this.
    private const int SmallestChunk = 1024;

    /// <summary>
    /// Whether CriuPS saves a connection in this state: established, half-closed either way, or still connecting
    /// (<see cref="TcpConnectInProgress"/>).
    /// </summary>
    public static bool CanSave(int state) => state is InetSocketInfo.Established or InetSocketInfo.FinWait1 or InetSocketInfo.FinWait2
        or InetSocketInfo.CloseWait or InetSocketInfo.LastAck or InetSocketInfo.Closing or InetSocketInfo.SynSent;

    // Our FIN is in the send queue; the peer's FIN was received; the peer acknowledged ours (libsoccr's SNDQ_*, RCVQ_*).
    private static bool SentFin(int state) => state is InetSocketInfo.FinWait1 or InetSocketInfo.FinWait2 or InetSocketInfo.Closing or InetSocketInfo.LastAck;

    private static bool ReceivedFin(int state) => state is InetSocketInfo.CloseWait or InetSocketInfo.LastAck or InetSocketInfo.Closing;

    /// <summary>
    /// Puts the connection in repair mode (from now on it sends nothing, and stays so: a killed process then closes it
    /// without a reset) and reads its state and queued bytes.
    /// </summary>
    /// <param name="describe">The connection as errors name it.</param>
    /// <returns>The image entry, the queued bytes, and the TCP state they belong to.</returns>
    public static (TcpStreamEntry Entry, byte[] Queues, int State) Dump(FileDescriptor socket, string describe)
    {
        Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR, TCP_REPAIR_ON);
        Span<byte> info = stackalloc byte[8];
        Get(socket, LibC.SOL_TCP, LibC.TCP_INFO, info);
        int state = info[0];
        if (!CanSave(state))
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"The {describe} became {InetSocketInfo.StateName(state)} while it was being saved, which CriuPS cannot save.", describe);
        }
        if (state == InetSocketInfo.SynSent)
        {
            return (TcpConnectInProgress.Dump(socket), [], state);
        }
        uint options = info[5];
        var entry = new TcpStreamEntry
        {
            InqLen = (uint)Socket.QueuedBytes(socket, Socket.SIOCINQ),
            OutqLen = (uint)Socket.QueuedBytes(socket, Socket.SIOCOUTQ),
            UnsqLen = (uint)Socket.QueuedBytes(socket, Socket.SIOCOUTQNSD),
            OptMask = options,
            SndWscale = 0,
            // In repair mode TCP_MAXSEG reads the MSS clamp, what TCP_REPAIR_OPTIONS sets again.
            MssClamp = (uint)Get(socket, LibC.SOL_TCP, LibC.TCP_MAXSEG),
        };
        if (SentFin(state))
        {
            // Our FIN counts in the send queue but holds no byte: it comes back with shutdown(2).
            entry.OutqLen = entry.OutqLen > 0 ? entry.OutqLen - 1 : 0;
            entry.UnsqLen = entry.UnsqLen > 0 ? entry.UnsqLen - 1 : 0;
        }
        if ((options & OptWscale) != 0)
        {
            entry.SndWscale = (uint)(info[6] & 0xF);
            entry.RcvWscale = (uint)(info[6] >> 4);
        }
        if ((options & OptTimestamps) != 0)
        {
            entry.Timestamp = (uint)Get(socket, LibC.SOL_TCP, LibC.TCP_TIMESTAMP);
        }
        Span<byte> window = stackalloc byte[20];
        Get(socket, LibC.SOL_TCP, LibC.TCP_REPAIR_WINDOW, window);
        entry.SndWl1 = BinaryPrimitives.ReadUInt32LittleEndian(window);
        entry.SndWnd = BinaryPrimitives.ReadUInt32LittleEndian(window[4..]);
        entry.MaxWindow = BinaryPrimitives.ReadUInt32LittleEndian(window[8..]);
        entry.RcvWnd = BinaryPrimitives.ReadUInt32LittleEndian(window[12..]);
        entry.RcvWup = BinaryPrimitives.ReadUInt32LittleEndian(window[16..]);

        var queues = new byte[entry.InqLen + entry.OutqLen];
        int peekOffset = Get(socket, LibC.SOL_SOCKET, LibC.SO_PEEK_OFF);
        if (peekOffset >= 0)
        {
            Set(socket, LibC.SOL_SOCKET, LibC.SO_PEEK_OFF, -1); // the process's own peek offset must neither move nor shift our view
        }
        try
        {
            entry.InqSeq = ReadQueue(socket, TCP_RECV_QUEUE, queues.AsSpan(0, (int)entry.InqLen), describe, "receive");
            entry.OutqSeq = ReadQueue(socket, TCP_SEND_QUEUE, queues.AsSpan((int)entry.InqLen), describe, "send");
        }
        finally
        {
            Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
            if (peekOffset >= 0)
            {
                Set(socket, LibC.SOL_SOCKET, LibC.SO_PEEK_OFF, peekOffset);
            }
        }
        return (entry, queues, state);
    }

    // The sequence number after the queue's last byte (rcv_nxt, write_seq), and its bytes, peeked.
    private static uint ReadQueue(FileDescriptor socket, int queue, Span<byte> bytes, string describe, string name)
    {
        Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR_QUEUE, queue);
        uint sequence = (uint)Get(socket, LibC.SOL_TCP, LibC.TCP_QUEUE_SEQ);
        if (bytes.Length == 0)
        {
            return sequence;
        }
        // One byte more than expected: a queue that grew would show.
        var buffer = new byte[bytes.Length + 1];
        int peeked = SocketMessage.PeekBytes(socket, buffer);
        if (peeked != bytes.Length)
        {
            throw new CheckpointException(CheckpointErrorKind.DumpFailed,
                $"The {name} queue of the {describe} holds {peeked} bytes where {bytes.Length} were expected.", describe);
        }
        buffer.AsSpan(0, bytes.Length).CopyTo(bytes);
        return sequence;
    }

    /// <summary>Takes a connection out of repair mode: it sends again (a window probe first) and takes its saved SO_REUSEADDR back.</summary>
    public static void Resume(FileDescriptor socket, bool reuseAddress)
    {
        Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR, TCP_REPAIR_OFF);
        // Leaving repair mode resets SO_REUSEADDR.
        Set(socket, LibC.SOL_SOCKET, LibC.SO_REUSEADDR, reuseAddress ? 1 : 0);
    }

    /// <summary>
    /// What <see cref="Resume"/> does, as system calls the process itself makes on its descriptor
    /// <paramref name="fd"/>, the option values kept in <paramref name="scratch"/>.
    /// </summary>
    public static IEnumerable<RemoteCall> ResumeCalls(int fd, bool reuseAddress, ScratchArea scratch)
    {
        var off = scratch.Keep(BitConverter.GetBytes(TCP_REPAIR_OFF));
        var reuse = scratch.Keep(BitConverter.GetBytes(reuseAddress ? 1 : 0));
        yield return RemoteCall.Setsockopt(fd, LibC.SOL_TCP, LibC.TCP_REPAIR, off, new ByteCount(sizeof(int)));
        yield return RemoteCall.Setsockopt(fd, LibC.SOL_SOCKET, LibC.SO_REUSEADDR, reuse, new ByteCount(sizeof(int)));
    }

    /// <summary>
    /// Rebuilds the connection on a new, unbound socket: repair mode on, bind, sequence numbers, connect (no
    /// handshake in repair mode), options, timestamp clock, queues, windows, FINs. The socket stays in repair mode.
    /// </summary>
    /// <param name="ns">The socket's network namespace, where the peer's forged segments go.</param>
    /// <param name="state">The saved TCP state.</param>
    /// <param name="queues">The image's bytes: receive queue, then send queue.</param>
    public static void Restore(FileDescriptor socket, NetworkNamespace ns, IPEndPoint local, IPEndPoint remote, int state, TcpStreamEntry entry, byte[] queues, string describe)
    {
        if (!CanSave(state))
        {
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"The {describe} was saved {InetSocketInfo.StateName(state)}, which CriuPS cannot restore.", describe);
        }
        if (state == InetSocketInfo.SynSent)
        {
            TcpConnectInProgress.Restore(socket, local, remote, entry, queues.Length, describe);
            return;
        }
        if (!entry.HasUnsqLen || queues.Length != entry.InqLen + entry.OutqLen || entry.UnsqLen > entry.OutqLen)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                $"The tcp-stream image of the {describe} is inconsistent (queues of {entry.InqLen}+{entry.OutqLen} bytes, {entry.UnsqLen} unsent, {queues.Length} stored).", describe);
        }
        Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR, TCP_REPAIR_ON);
        // In repair mode a socket may bind an address and port that others use (the listener it came from).
        Check(Socket.TryBind(socket, local), describe, $"bind to {local}");
        // The saved sequence numbers count the FINs; the FINs themselves come back at the end.
        uint inqSeq = entry.InqSeq - (ReceivedFin(state) ? 1u : 0);
        uint outqSeq = entry.OutqSeq - (SentFin(state) ? 1u : 0);
        SetSequence(socket, TCP_RECV_QUEUE, inqSeq - entry.InqLen);
        SetSequence(socket, TCP_SEND_QUEUE, outqSeq - entry.OutqLen);
        int connected = Socket.TryConnect(socket, remote);
        if (connected == Errno.EADDRNOTAVAIL)
        {
            throw new CheckpointException(CheckpointErrorKind.AddressInUse,
                $"The {describe} cannot be made again: another connection from {local} to {remote} exists now.", local.ToString(),
                "Close that connection, then restore again.");
        }
        Check(connected, describe, $"connect to {remote} in repair mode");
        RepairOptions(socket, entry);
        if ((entry.OptMask & OptTimestamps) != 0)
        {
            if (!entry.HasTimestamp)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"The tcp-stream image of the {describe} uses timestamps but saved no clock.", describe);
            }
            Set(socket, LibC.SOL_TCP, LibC.TCP_TIMESTAMP, (int)entry.Timestamp);
        }
        // Room for every queued byte; the saved sizes come back with the other options.
        Set(socket, LibC.SOL_SOCKET, LibC.SO_SNDBUFFORCE, (int)Math.Min(int.MaxValue / 2, 2L * entry.OutqLen + (1 << 20)));
        Set(socket, LibC.SOL_SOCKET, LibC.SO_RCVBUFFORCE, (int)Math.Min(int.MaxValue / 2, 2L * entry.InqLen + (1 << 20)));
        Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR_QUEUE, TCP_RECV_QUEUE);
        Fill(socket, queues.AsSpan(0, (int)entry.InqLen), describe, "receive queue");
        int sent = (int)(entry.OutqLen - entry.UnsqLen);
        Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR_QUEUE, TCP_SEND_QUEUE);
        Fill(socket, queues.AsSpan((int)entry.InqLen, sent), describe, "sent part of the send queue");
        if (entry.UnsqLen > 0)
        {
            // Never sent: queued as any write is, outside repair mode (the network lock drops what goes out now).
            Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR, TCP_REPAIR_OFF_NO_WP);
            Fill(socket, queues.AsSpan((int)entry.InqLen + sent), describe, "unsent part of the send queue");
            Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR, TCP_REPAIR_ON);
        }
        if (entry.HasSndWnd)
        {
            // The peer's FIN, forged below, takes one more sequence number of the window.
            uint finInWindow = ReceivedFin(state) ? 1u : 0;
            Span<byte> window = stackalloc byte[20];
            BinaryPrimitives.WriteUInt32LittleEndian(window, entry.SndWl1);
            BinaryPrimitives.WriteUInt32LittleEndian(window[4..], entry.SndWnd);
            BinaryPrimitives.WriteUInt32LittleEndian(window[8..], entry.MaxWindow);
            BinaryPrimitives.WriteUInt32LittleEndian(window[12..], entry.RcvWnd + finInWindow);
            BinaryPrimitives.WriteUInt32LittleEndian(window[16..], entry.RcvWup - finInWindow);
            Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR_WINDOW, window);
        }
        RestoreFins(socket, ns, local, remote, state, entry, inqSeq, outqSeq, describe);
        Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
    }

    // In libsoccr's order: our first FIN (FIN_WAIT1, FIN_WAIT2, CLOSING), the peer's FIN (CLOSE_WAIT, LAST_ACK,
    // CLOSING), our FIN after the peer's (LAST_ACK), and the peer's acknowledgement of ours (FIN_WAIT2).
    private static void RestoreFins(FileDescriptor socket, NetworkNamespace ns, IPEndPoint local, IPEndPoint remote, int state,
        TcpStreamEntry entry, uint inqSeq, uint outqSeq, string describe)
    {
        ushort window = (ushort)Math.Min(ushort.MaxValue, (entry.OptMask & OptWscale) != 0 ? entry.SndWnd >> (int)entry.SndWscale : entry.SndWnd);
        if (SentFin(state) && state != InetSocketInfo.LastAck)
        {
            SendOurFin(socket, acknowledged: state == InetSocketInfo.FinWait2, describe);
        }
        if (ReceivedFin(state))
        {
            TcpPeerSegment.Send(ns, remote, local, inqSeq, outqSeq - entry.OutqLen, window, fin: true, describe);
        }
        if (state == InetSocketInfo.LastAck)
        {
            SendOurFin(socket, acknowledged: false, describe);
        }
        if (state == InetSocketInfo.FinWait2)
        {
            TcpPeerSegment.Send(ns, remote, local, inqSeq, outqSeq + 1 - entry.OutqLen, window, fin: false, describe);
        }
    }

    // shutdown(SHUT_WR) queues our FIN; an acknowledged one is queued as already sent (TCP_SEND_QUEUE), for the peer's
    // forged acknowledgement to take.
    private static void SendOurFin(FileDescriptor socket, bool acknowledged, string describe)
    {
        if (acknowledged)
        {
            Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR_QUEUE, TCP_SEND_QUEUE);
        }
        int errno = Socket.TryShutdown(socket, 1);
        if (errno != 0)
        {
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"The FIN of the {describe} cannot be put back: shutdown failed: {Errno.Describe(errno)}.", describe);
        }
    }

    private static void SetSequence(FileDescriptor socket, int queue, uint sequence)
    {
        Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR_QUEUE, queue);
        Set(socket, LibC.SOL_TCP, LibC.TCP_QUEUE_SEQ, unchecked((int)sequence));
    }

    // SACK, window scaling and timestamps as negotiated at the handshake, and the MSS clamp: struct tcp_repair_opt pairs.
    private static void RepairOptions(FileDescriptor socket, TcpStreamEntry entry)
    {
        var pairs = new List<(uint Code, uint Value)>();
        if ((entry.OptMask & OptSack) != 0)
        {
            pairs.Add((TcpOptSackPermitted, 0));
        }
        if ((entry.OptMask & OptWscale) != 0)
        {
            pairs.Add((TcpOptWindow, entry.SndWscale + (entry.RcvWscale << 16)));
        }
        if ((entry.OptMask & OptTimestamps) != 0)
        {
            pairs.Add((TcpOptTimestamp, 0));
        }
        pairs.Add((TcpOptMaxSeg, entry.MssClamp));
        var raw = new byte[pairs.Count * 8];
        for (int i = 0; i < pairs.Count; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(raw.AsSpan(i * 8), pairs[i].Code);
            BinaryPrimitives.WriteUInt32LittleEndian(raw.AsSpan(i * 8 + 4), pairs[i].Value);
        }
        Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR_OPTIONS, raw);
    }

    private static void Fill(FileDescriptor socket, ReadOnlySpan<byte> data, string describe, string what)
    {
        int chunk = Math.Max(data.Length, 1);
        while (data.Length > 0)
        {
            long sent = SocketMessage.TrySend(socket, data[..Math.Min(chunk, data.Length)], default);
            if (sent > 0)
            {
                data = data[(int)sent..];
            }
            else if (chunk > SmallestChunk)
            {
                chunk /= 2;
            }
            else
            {
                throw new CheckpointException(CheckpointErrorKind.RestoreFailed,
                    $"The {what} of the {describe} cannot be put back ({data.Length} bytes left): {(sent < 0 ? Errno.Describe((int)-sent) : "nothing taken")}.", describe);
            }
        }
    }

    private static void Check(int errno, string describe, string what)
    {
        if (errno != 0)
        {
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"The {describe} cannot be rebuilt: {what} failed: {Errno.Describe(errno)}.", describe);
        }
    }
}
