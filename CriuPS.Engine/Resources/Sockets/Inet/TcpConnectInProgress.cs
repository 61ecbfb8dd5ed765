using System.Net;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Interop;
using static CriuPS.Native.Interop.SocketOption;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// A connect in progress (SYN_SENT), saved and restored as CRIU's libsoccr does: nothing is queued and nothing was
/// negotiated yet, so all a SYN_SENT socket holds is its addresses and its initial sequence number. Restore sets that
/// number and connects again for real (out of repair mode, for the kernel to send a SYN and arm its retransmit
/// timer), then goes back into repair mode like every restored connection. The network lock drops that first SYN;
/// once the lock goes, the retransmit timer sends it again with the same sequence number, so a peer that had answered
/// nothing yet (a listener with a full queue, a port not open yet) sees one connect attempt and completes it.
/// </summary>
internal static class TcpConnectInProgress
{
    /// <summary>
    /// Reads the socket's sequence number; the socket is in repair mode already. In SYN_SENT the kernel reports empty
    /// queues and write_seq one past the SYN's own number.
    /// </summary>
    public static TcpStreamEntry Dump(FileDescriptor socket)
    {
        Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR_QUEUE, TCP_SEND_QUEUE);
        uint afterSyn = (uint)Get(socket, LibC.SOL_TCP, LibC.TCP_QUEUE_SEQ);
        Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
        return new TcpStreamEntry
        {
            InqLen = 0,
            OutqLen = 0,
            UnsqLen = 0,
            InqSeq = 0,
            OutqSeq = afterSyn,
            // Nothing negotiated yet: no options, no window scaling.
            OptMask = 0,
            SndWscale = 0,
            MssClamp = (uint)Get(socket, LibC.SOL_TCP, LibC.TCP_MAXSEG),
        };
    }

    /// <summary>
    /// Connects a new, unbound, non-blocking socket again from <paramref name="local"/> with the saved initial
    /// sequence number, and leaves it in repair mode (silent) until the restore resumes it.
    /// </summary>
    public static void Restore(FileDescriptor socket, IPEndPoint local, IPEndPoint remote, TcpStreamEntry entry, int queuedBytes, string describe)
    {
        if (entry.InqLen != 0 || entry.OutqLen != 0 || entry.UnsqLen != 0 || queuedBytes != 0)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                $"The tcp-stream image of the {describe} queues {entry.InqLen}+{entry.OutqLen} bytes ({queuedBytes} stored), but a connection still connecting has none.", describe);
        }
        Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR, TCP_REPAIR_ON);
        Fail(Socket.TryBind(socket, local), describe, $"bind to {local}");
        // The SYN takes one sequence number: the saved write_seq is one past it, and connect sends the SYN at write_seq.
        Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR_QUEUE, TCP_SEND_QUEUE);
        Set(socket, LibC.SOL_TCP, LibC.TCP_QUEUE_SEQ, unchecked((int)(entry.OutqSeq - 1)));
        Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
        // Out of repair mode for the connect itself: in repair mode connect would skip the handshake and establish.
        Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR, TCP_REPAIR_OFF_NO_WP);
        int connected = Socket.TryConnect(socket, remote);
        if (connected == Errno.EADDRNOTAVAIL)
        {
            throw new CheckpointException(CheckpointErrorKind.AddressInUse,
                $"The {describe} cannot be made again: another connection from {local} to {remote} exists now.", local.ToString(),
                "Close that connection, then restore again.");
        }
        // 0 would be a connect completed at once (a peer answering through no lock): as good.
        Fail(connected == Errno.EINPROGRESS ? 0 : connected, describe, $"connect to {remote}");
        Set(socket, LibC.SOL_TCP, LibC.TCP_REPAIR, TCP_REPAIR_ON);
    }

    private static void Fail(int errno, string describe, string what)
    {
        if (errno != 0)
        {
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"The {describe} cannot connect again: {what} failed: {Errno.Describe(errno)}.", describe);
        }
    }
}
