using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Interop;
using static CriuPS.Native.Interop.SocketOption;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// The receive queue of a unix socket (sk-queues.img: one sk_packet_entry and its bytes per message). Dump reads it
/// with MSG_PEEK from a peek offset it moves along (SO_PEEK_OFF), so nothing is taken from the queue: a process
/// left running, or killed, loses nothing. Stream data comes as chunks whose limits do not matter; datagrams and
/// seqpacket records one by one, with their boundaries, and each datagram with its sender's name. A message that
/// carries descriptors (SCM_RIGHTS) keeps them, as file ids (scm entries), and its own boundaries even in a stream.
/// </summary>
internal static class UnixSocketQueue
{
    private const int FirstBufferSize = 64 * 1024;

    /// <summary>Every message waiting in <paramref name="socket"/> (our copy of it), oldest first.</summary>
    /// <param name="describe">The socket as errors name it ("process 12: fd 4: unix datagram socket /run/x").</param>
    /// <param name="inFlight">
    /// Takes each descriptor a message carries (SCM_RIGHTS; the peek made it a descriptor of ours) and gives the id of
    /// its file in files.img.
    /// </param>
    public static List<(SkPacketEntry Entry, byte[] Data)> Dump(FileDescriptor socket, uint fileId, UnixDiagSocket diag, string describe, Func<FileDescriptor, uint> inFlight)
    {
        var messages = new List<(SkPacketEntry, byte[])>();
        int originalOffset = Get(socket, LibC.SOL_SOCKET, LibC.SO_PEEK_OFF);
        try
        {
            Set(socket, LibC.SOL_SOCKET, LibC.SO_PEEK_OFF, 0);
            var buffer = new byte[FirstBufferSize];
            long offset = 0;
            while (true)
            {
                var peeked = SocketMessage.Peek(socket, buffer);
                if (peeked is not { } message)
                {
                    break;
                }
                if (message.Truncated)
                {
                    // A datagram larger than the buffer: look at it again, whole, with a buffer that fits.
                    SocketMessage.CloseRights(message.Control);
                    buffer = new byte[buffer.Length * 4];
                    Set(socket, LibC.SOL_SOCKET, LibC.SO_PEEK_OFF, checked((int)offset));
                    continue;
                }
                UnixQueuedCredentials.Check(message, describe);
                if (message.Length == 0 && IsEnd(diag))
                {
                    break;
                }
                int start = 0;
                var rights = message.Control.Where(c => c.Type == LibC.SCM_RIGHTS).ToList();
                if (rights.Count > 0 && diag.Type == LibC.SOCK_STREAM && message.Length > 1)
                {
                    // The peek glued the segments sent before the one that carries the descriptors: they come back
                    // as a message of their own, or the receiver would get the descriptors with their bytes.
                    Set(socket, LibC.SOL_SOCKET, LibC.SO_PEEK_OFF, checked((int)offset));
                    start = SocketMessage.PeekWholeSegments(socket, message.Length - 1);
                    if (start > 0)
                    {
                        messages.Add((new SkPacketEntry { IdFor = fileId, Length = (uint)start }, buffer.AsSpan(0, start).ToArray()));
                    }
                    Set(socket, LibC.SOL_SOCKET, LibC.SO_PEEK_OFF, checked((int)(offset + message.Length)));
                }
                var entry = new SkPacketEntry { IdFor = fileId, Length = (uint)(message.Length - start) };
                if (diag.Type == LibC.SOCK_DGRAM && message.SenderName.Length > 0)
                {
                    entry.CriupsSenderName = Google.Protobuf.ByteString.CopyFrom(message.SenderName);
                }
                foreach (var control in rights)
                {
                    // Ours from now on, each closed by whoever takes it, or here when saving one fails.
                    var copies = new Queue<FileDescriptor>(control.Descriptors().Select(fd => new FileDescriptor(fd)));
                    var scm = new ScmEntry { Type = (uint)LibC.SCM_RIGHTS };
                    try
                    {
                        while (copies.TryDequeue(out var copy))
                        {
                            scm.Rights.Add(inFlight(copy));
                        }
                    }
                    finally
                    {
                        foreach (var left in copies)
                        {
                            left.Dispose();
                        }
                    }
                    entry.Scm.Add(scm);
                }
                messages.Add((entry, buffer.AsSpan(start, message.Length - start).ToArray()));
                offset += message.Length;
            }
        }
        finally
        {
            Set(socket, LibC.SOL_SOCKET, LibC.SO_PEEK_OFF, originalOffset);
        }
        long total = messages.Sum(m => (long)m.Item1.Length);
        // Stream and seqpacket sockets report every queued byte: a difference means data a peek cannot see
        // (an out-of-band byte, MSG_OOB), which cannot be put back as it was.
        if (diag.Type != LibC.SOCK_DGRAM && total != diag.ReceiveQueue)
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"{describe} has {diag.ReceiveQueue} bytes queued but only {total} can be read without taking them (out-of-band data?); CriuPS cannot save it.", describe);
        }
        return messages;
    }

    // A peek of nothing: the end of a stream whose writer has shut down (or an empty record then: the kernel cannot
    // tell them apart, as for CRIU); for a datagram and a seqpacket socket still open, an empty message.
    internal static bool IsEnd(UnixDiagSocket diag) =>
        diag.Type == LibC.SOCK_STREAM || (diag.Type == LibC.SOCK_SEQPACKET && (diag.Shutdown & UnixDiagSocket.ShutdownRead) != 0);
}
