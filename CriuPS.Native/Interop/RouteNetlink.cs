using System.Buffers.Binary;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// A NETLINK_ROUTE socket (what ip(8) talks to): dumps of links, addresses and routes, and requests that change them.
/// It lives in the network namespace of the thread that opened it, and stays there.
/// </summary>
public sealed unsafe class RouteNetlink : IDisposable
{
    private const int NetlinkRoute = 0;
    public const ushort RtmNewlink = 16, RtmDellink = 17, RtmGetlink = 18, RtmNewaddr = 20, RtmDeladdr = 21, RtmGetaddr = 22, RtmNewroute = 24, RtmGetroute = 26;

    private readonly FileDescriptor socket;
    private uint sequence;

    private RouteNetlink(FileDescriptor socket) => this.socket = socket;

    /// <summary>A socket in the calling thread's network namespace.</summary>
    public static RouteNetlink Open()
    {
        int fd = LibC.socket(LibC.AF_NETLINK, LibC.SOCK_RAW | LibC.SOCK_CLOEXEC, NetlinkRoute);
        return fd >= 0 ? new RouteNetlink(new FileDescriptor(fd)) : throw new NativeException("socket(AF_NETLINK, NETLINK_ROUTE)", LibC.errno);
    }

    /// <summary>Every message (header included) the kernel answers a dump request of <paramref name="type"/> with.</summary>
    public List<byte[]> Dump(ushort type, ReadOnlySpan<byte> familyHeader)
    {
        var messages = new List<byte[]>();
        int error = Exchange(new NetlinkBuilder(type, NetlinkMessages.NlmFRequest | NetlinkMessages.NlmFDump, familyHeader).ToArray(),
            (_, message) => messages.Add(message.ToArray()));
        return error == 0 ? messages : throw new NativeException($"netlink dump {type}", error);
    }

    /// <summary>Sends one request (its flags get NLM_F_REQUEST and NLM_F_ACK) and returns the errno it is answered with, 0 for success.</summary>
    public int Request(byte[] message)
    {
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(message.AsSpan(6));
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(6), (ushort)(flags | NetlinkMessages.NlmFRequest | NetlinkMessages.NlmFAck));
        return Exchange(message, (_, _) => { });
    }

    private int Exchange(byte[] request, Action<ushort, ReadOnlySpan<byte>> onMessage) =>
        NetlinkMessages.Exchange(socket, request, ++sequence, "NETLINK_ROUTE", untilDone: true, onMessage);

    public void Dispose() => socket.Dispose();
}
