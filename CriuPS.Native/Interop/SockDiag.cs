using System.Buffers.Binary;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// A NETLINK_SOCK_DIAG socket: one request to the kernel, and the netlink messages it answers with (what ss(8)
/// reads). Sees the sockets of this process's network namespace.
/// </summary>
public sealed unsafe class SockDiag : IDisposable
{
    private const int NetlinkSockDiag = 4;
    public const ushort SockDiagByFamily = 20;
    public const ushort NlmsgError = NetlinkMessages.NlmsgError, NlmsgDone = NetlinkMessages.NlmsgDone;
    public const ushort NlmFRequest = NetlinkMessages.NlmFRequest, NlmFDump = NetlinkMessages.NlmFDump;
    public const int HeaderLength = NetlinkMessages.HeaderLength;

    private readonly FileDescriptor socket;
    private uint sequence;

    private SockDiag(FileDescriptor socket) => this.socket = socket;

    public static SockDiag Open()
    {
        int fd = LibC.socket(LibC.AF_NETLINK, LibC.SOCK_RAW | LibC.SOCK_CLOEXEC, NetlinkSockDiag);
        return fd >= 0 ? new SockDiag(new FileDescriptor(fd)) : throw new NativeException("socket(AF_NETLINK, NETLINK_SOCK_DIAG)", LibC.errno);
    }

    /// <summary>
    /// Sends a SOCK_DIAG_BY_FAMILY request with <paramref name="payload"/> and hands every answering message's payload
    /// to <paramref name="onMessage"/>, until the kernel is done: after the first message for a single-socket request,
    /// at NLMSG_DONE for a dump. Returns 0, or the errno the kernel answered with.
    /// </summary>
    public int Exchange(ReadOnlySpan<byte> payload, bool dump, Action<ReadOnlySpan<byte>> onMessage)
    {
        var request = new byte[HeaderLength + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(request, (uint)request.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(request.AsSpan(4), SockDiagByFamily);
        BinaryPrimitives.WriteUInt16LittleEndian(request.AsSpan(6), (ushort)(NlmFRequest | (dump ? NlmFDump : 0)));
        payload.CopyTo(request.AsSpan(HeaderLength));
        return NetlinkMessages.Exchange(socket, request, ++sequence, "NETLINK_SOCK_DIAG", untilDone: dump, (_, message) => onMessage(message[HeaderLength..]));
    }

    /// <summary>
    /// Walks the netlink messages of one datagram: answers' payloads go to <paramref name="onMessage"/>; stops at
    /// NLMSG_DONE or NLMSG_ERROR (whose errno it returns). Messages of another sequence number (a stale answer) are skipped.
    /// </summary>
    public static (bool Done, int Errno) Split(ReadOnlySpan<byte> datagram, uint sequence, Action<ReadOnlySpan<byte>> onMessage) =>
        NetlinkMessages.Walk(datagram, sequence, "NETLINK_SOCK_DIAG", (_, message) => onMessage(message[HeaderLength..]));

    public void Dispose() => socket.Dispose();
}
