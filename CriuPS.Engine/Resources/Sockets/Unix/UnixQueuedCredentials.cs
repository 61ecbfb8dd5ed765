using System.Buffers.Binary;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Resources.Files;
using CriuPS.Native.Interop;
using static CriuPS.Native.Interop.SocketOption;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// Messages queued in a unix socket with their sender's credentials (SCM_CREDENTIALS: the kernel records them when
/// the sender passes them, or when either end had SO_PASSCRED as the message was sent). They are refused, before
/// the freeze and again at the dump: CRIU refuses every control message but SCM_RIGHTS (sk-queue.c), and CriuPS
/// cannot do better, because the kernel lets a message carry only credentials naming a process that exists as it
/// is sent (sendmsg fails with ESRCH otherwise), while queues are refilled by the engine before any restored process
/// exists, and a sender that has ended, or lives outside the tree, would never exist again. Messages queued without
/// credentials (pid 0: neither end asked for them when they were sent) are saved, and restored without any, SO_PASSCRED
/// being set again only once the queue is refilled.
/// </summary>
internal static class UnixQueuedCredentials
{
    private const int PeekBufferSize = 64 * 1024;

    /// <summary>Why the queue of a socket of the tree cannot be saved (the pre-flight check), or null.</summary>
    public static string? Problem(DescriptorProbe probe, UnixDiagSocket socket)
    {
        if (socket.IsListening || socket.ReceiveQueue == 0)
        {
            return null;
        }
        try
        {
            using var pidfd = Pidfd.Open(probe.Pid);
            using var copy = Pidfd.GetFd(pidfd, probe.Fd);
            return Get(copy, LibC.SOL_SOCKET, LibC.SO_PASSCRED) == 0 || First(copy, socket) is not { } sender ? null : Refusal(sender);
        }
        catch (NativeException e) when (e.Errno is Errno.ESRCH or Errno.EBADF)
        {
            return null; // closed meanwhile
        }
    }

    /// <summary>At the dump: refuses a message that carries credentials (some may have arrived since the pre-flight check).</summary>
    public static void Check(PeekedMessage message, string describe)
    {
        if (Of(message) is { } sender)
        {
            SocketMessage.CloseRights(message.Control);
            throw new CheckpointException(CheckpointErrorKind.Unsupported, $"{describe} {Refusal(sender)}.", describe);
        }
    }

    private static string Refusal((int Pid, uint Uid, uint Gid) sender) =>
        $"has messages queued with their senders' credentials (SCM_CREDENTIALS, SO_PASSCRED; the first from process {sender.Pid}, uid {sender.Uid}, gid {sender.Gid}), " +
        "which CriuPS cannot put back: the kernel lets a message carry only credentials naming a process that exists as it is sent, " +
        "and queues are refilled before the restored processes exist (CRIU refuses them too)";

    // The credentials a message carries, when they name a process (pid 0: recorded for no one).
    private static (int Pid, uint Uid, uint Gid)? Of(PeekedMessage message)
    {
        foreach (var control in message.Control)
        {
            if (control.Type == LibC.SCM_CREDENTIALS && control.Data.Length >= 12 && BinaryPrimitives.ReadInt32LittleEndian(control.Data) is int pid and not 0)
            {
                return (pid, BinaryPrimitives.ReadUInt32LittleEndian(control.Data.AsSpan(4)), BinaryPrimitives.ReadUInt32LittleEndian(control.Data.AsSpan(8)));
            }
        }
        return null;
    }

    // The credentials of the first queued message that carries some, peeked from a moving offset (nothing is taken).
    // Only the control messages matter: a datagram longer than the buffer is looked at again from further on, which
    // repeats its credentials and changes nothing.
    private static (int Pid, uint Uid, uint Gid)? First(FileDescriptor socket, UnixDiagSocket diag)
    {
        int originalOffset = Get(socket, LibC.SOL_SOCKET, LibC.SO_PEEK_OFF);
        try
        {
            Set(socket, LibC.SOL_SOCKET, LibC.SO_PEEK_OFF, 0);
            var buffer = new byte[PeekBufferSize];
            while (SocketMessage.Peek(socket, buffer) is { } message)
            {
                SocketMessage.CloseRights(message.Control);
                if (Of(message) is { } sender)
                {
                    return sender;
                }
                if (message.Length == 0 && UnixSocketQueue.IsEnd(diag))
                {
                    break;
                }
            }
            return null;
        }
        finally
        {
            Set(socket, LibC.SOL_SOCKET, LibC.SO_PEEK_OFF, originalOffset);
        }
    }
}
