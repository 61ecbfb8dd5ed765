using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using CriuPS.Engine.Errors;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Migration;

/// <summary>
/// An address that clients reach a moved tree at, and that moves with it (Move-Process -ServiceAddress): taken from
/// the interface that holds it on the source, given, with the same prefix length, to the interface of the
/// destination that holds the address its session arrived at (the link the move goes over). Its established TCP
/// connections go on at the destination because the address does: the network must deliver the packets for it to
/// whichever machine holds it (a shared link, or routes through both). Changed with netlink, in the calling
/// thread's network namespace, as `ip address` does.
/// </summary>
public static class ServiceAddress
{
    private const int IfaddrmsgLength = 8;
    private const ushort IfaAddress = 1, IfaLocal = 2;

    /// <summary>How an address is held here: the interface's index and the prefix length; null when no interface has it.</summary>
    public static (int InterfaceIndex, byte PrefixLength)? Find(IPAddress address) =>
        Message(address) is { } message ? (BinaryPrimitives.ReadInt32LittleEndian(message.AsSpan(NetlinkMessages.HeaderLength + 4)), message[NetlinkMessages.HeaderLength + 1]) : null;

    /// <summary>Takes <paramref name="address"/> from the interface that holds it here (none holding it: nothing to do).</summary>
    public static void Remove(IPAddress address)
    {
        if (Message(address) is not { } message)
        {
            return;
        }
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(4), RouteNetlink.RtmDeladdr);
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(6), 0);
        using var netlink = RouteNetlink.Open();
        Check(netlink.Request(message), $"remove the address {address} here");
    }

    /// <summary>Gives <paramref name="address"/>/<paramref name="prefixLength"/> to the interface that holds <paramref name="beside"/> here.</summary>
    public static void Add(IPAddress address, byte prefixLength, IPAddress beside)
    {
        var (index, _) = Find(beside) ?? throw new CheckpointException(CheckpointErrorKind.MoveFailed,
            $"The service address {address} cannot be added here: no interface holds {beside}, the address the move arrived at.", address.ToString());
        var header = new byte[IfaddrmsgLength];
        header[0] = (byte)Family(address);
        header[1] = prefixLength;
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(4), index);
        var bytes = address.GetAddressBytes();
        var message = new NetlinkBuilder(RouteNetlink.RtmNewaddr, NetlinkMessages.NlmFCreate | NetlinkMessages.NlmFExcl, header)
            .Add(IfaLocal, bytes).Add(IfaAddress, bytes).ToArray();
        using var netlink = RouteNetlink.Open();
        Check(netlink.Request(message), $"add the address {address}/{prefixLength} here");
    }

    // The kernel's RTM_NEWADDR message for the address (IFA_LOCAL, or IFA_ADDRESS where there is no local one).
    private static byte[]? Message(IPAddress address)
    {
        var wanted = address.GetAddressBytes();
        using var netlink = RouteNetlink.Open();
        foreach (var message in netlink.Dump(RouteNetlink.RtmGetaddr, new byte[IfaddrmsgLength]))
        {
            if (message.Length < NetlinkMessages.HeaderLength + IfaddrmsgLength || message[NetlinkMessages.HeaderLength] != Family(address))
            {
                continue;
            }
            var attributes = NetlinkMessages.Attributes(message.AsSpan(NetlinkMessages.HeaderLength + IfaddrmsgLength));
            if (attributes is not null && (attributes.GetValueOrDefault(IfaLocal) ?? attributes.GetValueOrDefault(IfaAddress)) is { } held && held.AsSpan().SequenceEqual(wanted))
            {
                return message;
            }
        }
        return null;
    }

    private static int Family(IPAddress address) => address.AddressFamily == AddressFamily.InterNetworkV6 ? 10 : 2;

    private static void Check(int error, string what)
    {
        if (error != 0)
        {
            throw new CheckpointException(CheckpointErrorKind.MoveFailed, $"The move could not {what}: {Errno.Describe(error)}.", what);
        }
    }
}
