using System.Buffers.Binary;
using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Resources.Network;

/// <summary>One network device as RTM_GETLINK shows it: index, flags, name, kind (null for none, as loopback), MTU, MAC, and a veth's peer.</summary>
internal sealed record NetworkLink(int Index, uint Flags, string Name, string? Kind, uint Mtu, byte[]? Address, int? PeerIndex, int? PeerNsid)
{
    public bool IsLoopback => (Flags & NetworkLinks.IffLoopback) != 0;

    public bool IsVeth => Kind == "veth";
}

/// <summary>
/// The devices of a network namespace: read with RTM_GETLINK, saved as CRIU's NetDeviceEntry (netdev-ID.img), made
/// again with RTM_NEWLINK. CriuPS saves the loopback device and veth devices whose peer is outside the namespace (CRIU's
/// external veth: the inner end is made again with its name, index, MAC and MTU, the outer one in the restorer's
/// namespace); other kinds (bridges, tun, macvlan, dummy, tunnels...) are refused before the freeze.
/// </summary>
internal static class NetworkLinks
{
    public const uint IffUp = 1, IffLoopback = 8;
    private const ushort IflaAddress = 1, IflaIfname = 3, IflaMtu = 4, IflaLink = 5, IflaLinkinfo = 18, IflaNetNsFd = 28, IflaLinkNetnsid = 37;
    private const ushort IflaInfoKind = 1, IflaInfoData = 2, VethInfoPeer = 1;
    private const int IfinfomsgLength = 16;

    /// <summary>Every device of the calling thread's network namespace.</summary>
    public static List<NetworkLink> Read(RouteNetlink netlink) =>
        netlink.Dump(RouteNetlink.RtmGetlink, new byte[IfinfomsgLength]).Select(Parse).OfType<NetworkLink>().ToList();

    private static NetworkLink? Parse(byte[] message)
    {
        var body = message.AsSpan(NetlinkMessages.HeaderLength);
        if (body.Length < IfinfomsgLength || NetlinkMessages.Attributes(body[IfinfomsgLength..]) is not { } attributes || !attributes.TryGetValue(IflaIfname, out var name))
        {
            return null;
        }
        string? kind = attributes.TryGetValue(IflaLinkinfo, out var info) && NetlinkMessages.Attributes(info) is { } linkInfo && linkInfo.TryGetValue(IflaInfoKind, out var k)
            ? NetlinkMessages.Text(k) : null;
        return new NetworkLink(
            BinaryPrimitives.ReadInt32LittleEndian(body[4..]), BinaryPrimitives.ReadUInt32LittleEndian(body[8..]), NetlinkMessages.Text(name), kind,
            attributes.TryGetValue(IflaMtu, out var mtu) ? BinaryPrimitives.ReadUInt32LittleEndian(mtu) : 0,
            attributes.GetValueOrDefault(IflaAddress),
            attributes.TryGetValue(IflaLink, out var link) ? BinaryPrimitives.ReadInt32LittleEndian(link) : null,
            attributes.TryGetValue(IflaLinkNetnsid, out var nsid) ? BinaryPrimitives.ReadInt32LittleEndian(nsid) : null);
    }

    /// <summary>What keeps the devices of a namespace from being saved: each device of a kind CriuPS does not make again, named.</summary>
    public static IEnumerable<string> Problems(IEnumerable<NetworkLink> links)
    {
        foreach (var link in links)
        {
            if (link.IsLoopback)
            {
                continue;
            }
            if (!link.IsVeth)
            {
                yield return $"its network namespace holds the {link.Kind ?? "unknown"} device '{link.Name}': CriuPS saves the loopback and veth devices of a namespace only";
            }
            else if (link.PeerNsid is null)
            {
                yield return $"its network namespace holds both ends of the veth pair '{link.Name}': CriuPS saves veth devices whose peer is outside the namespace only";
            }
        }
    }

    /// <summary>
    /// The outer end of a veth of the namespace when it lies in the namespace <paramref name="outside"/> (the engine's)
    /// lists: the veth there whose index is the inner end's peer and whose peer is the inner end.
    /// </summary>
    public static string? PeerName(NetworkLink inner, IEnumerable<NetworkLink> outside) =>
        outside.FirstOrDefault(o => o.IsVeth && o.Index == inner.PeerIndex && o.PeerIndex == inner.Index)?.Name;

    /// <summary>The saved form, as CRIU writes it, with the outer end's name (CriuPS's) when it was known.</summary>
    public static NetDeviceEntry Entry(NetworkLink link, string? peerName)
    {
        var entry = new NetDeviceEntry
        {
            Type = link.IsLoopback ? NdType.Loopback : NdType.Veth,
            Ifindex = (uint)link.Index,
            Mtu = link.Mtu,
            Flags = link.Flags,
            Name = link.Name,
        };
        if (link.Address is not null)
        {
            entry.Address = Google.Protobuf.ByteString.CopyFrom(link.Address);
        }
        if (link.IsVeth)
        {
            entry.PeerIfindex = (uint)link.PeerIndex!.Value;
            entry.PeerNsid = (uint)link.PeerNsid!.Value;
            if (peerName is not null)
            {
                entry.CriupsPeerName = peerName;
            }
        }
        return entry;
    }

    /// <summary>
    /// Makes a saved veth again from inside the new namespace (the calling thread is in it): the inner end with its
    /// saved index, name, MAC and MTU, down; the outer end named <paramref name="outer"/> in the namespace
    /// <paramref name="outerNamespace"/> (IFLA_NET_NS_FD). Returns 0 or the errno.
    /// </summary>
    public static int CreateVeth(RouteNetlink netlink, NetDeviceEntry inner, string outer, FileDescriptor outerNamespace)
    {
        var message = new NetlinkBuilder(RouteNetlink.RtmNewlink, NetlinkMessages.NlmFCreate | NetlinkMessages.NlmFExcl, Ifinfomsg((int)inner.Ifindex, 0, 0))
            .Add(IflaIfname, inner.Name).Add(IflaMtu, inner.Mtu);
        if (inner.HasAddress)
        {
            message.Add(IflaAddress, inner.Address.Span);
        }
        message.Begin(IflaLinkinfo).Add(IflaInfoKind, "veth").Begin(IflaInfoData).Begin(VethInfoPeer)
            .Append(Ifinfomsg(0, 0, 0)).Add(IflaIfname, outer).Add(IflaNetNsFd, (uint)outerNamespace.Value)
            .End().End().End();
        return netlink.Request(message.ToArray());
    }

    /// <summary>Sets a device's MTU (and MAC, when saved) and its up flag as saved; returns 0 or the errno.</summary>
    public static int Configure(RouteNetlink netlink, NetDeviceEntry device)
    {
        var message = new NetlinkBuilder(RouteNetlink.RtmNewlink, 0, Ifinfomsg((int)device.Ifindex, device.Flags & IffUp, IffUp)).Add(IflaMtu, device.Mtu);
        if (device.HasAddress && device.Type != NdType.Loopback)
        {
            message.Add(IflaAddress, device.Address.Span);
        }
        return netlink.Request(message.ToArray());
    }

    /// <summary>Brings the device named <paramref name="name"/> up; returns 0 or the errno.</summary>
    public static int SetUp(RouteNetlink netlink, string name) =>
        netlink.Request(new NetlinkBuilder(RouteNetlink.RtmNewlink, 0, Ifinfomsg(0, IffUp, IffUp)).Add(IflaIfname, name).ToArray());

    /// <summary>Deletes the device named <paramref name="name"/> (a veth takes its peer with it); returns 0 or the errno.</summary>
    public static int Delete(RouteNetlink netlink, string name) =>
        netlink.Request(new NetlinkBuilder(RouteNetlink.RtmDellink, 0, Ifinfomsg(0, 0, 0)).Add(IflaIfname, name).ToArray());

    private static byte[] Ifinfomsg(int index, uint flags, uint change)
    {
        var header = new byte[IfinfomsgLength];
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(4), index);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(12), change);
        return header;
    }
}
