using System.Buffers.Binary;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Native.Interop;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Network;

/// <summary>
/// ifaddr-ID.img, route-ID.img and route6-ID.img as CRIU writes them: what `ip addr save` and `ip route save` print, a
/// 4-byte magic of iproute2's then the rtnetlink messages of the kernel's dump, whole and unchanged, which `ip addr
/// restore` / `ip route restore` (what CRIU's restore runs) send back. CriuPS reads the same messages from its own
/// netlink socket and writes them the same way, so CRIU restores them, and CriuPS replays images CRIU wrote.
/// </summary>
internal static class IpDumpImages
{
    /// <summary>iproute2's ipadd_dump_magic and route_dump_magic.</summary>
    public const uint AddressMagic = 0x47361222, RouteMagic = 0x45311224;

    private const int RtmsgLength = 12, IfaddrmsgLength = 8;
    private const byte RtTableMain = 254;
    private const uint RtmFCloned = 0x200;
    // Route states the kernel reports (the device is down, or has no carrier) and refuses in a request.
    private const uint RtnhFDead = 0x1, RtnhFLinkdown = 0x10;
    private const ushort RtaGateway = 5, RtaPriority = 6, RtaTable = 15;

    /// <summary>The namespace's addresses, every family, as `ip addr save` has them.</summary>
    public static List<byte[]> Addresses(RouteNetlink netlink) => netlink.Dump(RouteNetlink.RtmGetaddr, new byte[IfaddrmsgLength]);

    /// <summary>
    /// The routes of the main table of one family, as `ip route save` (IPv4) and `ip -6 route save` keep them: routes
    /// the kernel cloned into its cache left out.
    /// </summary>
    public static List<byte[]> Routes(RouteNetlink netlink, bool ipv6)
    {
        var request = new byte[RtmsgLength];
        request[0] = (byte)(ipv6 ? LibC.AF_INET6 : LibC.AF_INET);
        return netlink.Dump(RouteNetlink.RtmGetroute, request).Where(m => Table(m) == RtTableMain && (Rtmsg(m, 8) & RtmFCloned) == 0).ToList();
    }

    public static void Write(DumpSession session, ImageType type, string id, uint magic, IEnumerable<byte[]> messages)
    {
        using var stream = session.Output.Create(type.FileName(id));
        Span<byte> head = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(head, magic);
        stream.Write(head);
        foreach (var message in messages)
        {
            stream.Write(message);
        }
    }

    /// <summary>The messages of a saved image (none when the file is absent); ImageCorrupt naming the file when it is not such a dump.</summary>
    public static List<byte[]> Read(string directory, ImageType type, string id, uint magic)
    {
        var path = Path.Combine(directory, type.FileName(id));
        if (!File.Exists(path))
        {
            return [];
        }
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 4 || BinaryPrimitives.ReadUInt32LittleEndian(bytes) != magic)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"{path}: this is not an iproute2 dump: it does not start with the magic 0x{magic:x8}.", path);
        }
        var messages = new List<byte[]>();
        int offset = 4;
        while (offset < bytes.Length)
        {
            int length = bytes.Length - offset >= NetlinkMessages.HeaderLength ? (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset)) : -1;
            if (length < NetlinkMessages.HeaderLength + (magic == RouteMagic ? RtmsgLength : IfaddrmsgLength) || length > bytes.Length - offset)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                    $"{path}: the netlink message at offset {offset} claims {length} bytes, of {bytes.Length - offset} left.", path);
            }
            messages.Add(bytes.AsSpan(offset, length).ToArray());
            offset += NetlinkMessages.Align(length);
        }
        return messages;
    }

    /// <summary>
    /// Sends saved messages back as requests to create (<paramref name="type"/>: RTM_NEWADDR or RTM_NEWROUTE), as `ip
    /// ... restore` does: what exists already (the loopback's address, a route the kernel made for an address) is no
    /// error. Routes go in iproute2's order: those through no gateway first, those through one last, without the
    /// state flags dead and linkdown (a route saved while its device was down or had no carrier: the kernel refuses them
    /// in a request, and `ip route restore` fails on such a dump). Returns the messages sent; throws RestoreFailed naming
    /// the first one the kernel refused.
    /// </summary>
    public static int Replay(RouteNetlink netlink, List<byte[]> messages, ushort type, string path)
    {
        var ordered = type == RouteNetlink.RtmNewroute ? messages.OrderBy(RoutePass).ToList() : messages;
        foreach (var saved in ordered)
        {
            var message = (byte[])saved.Clone();
            BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(4), type);
            BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(6), NetlinkMessages.NlmFCreate);
            if (type == RouteNetlink.RtmNewroute && message.Length >= NetlinkMessages.HeaderLength + RtmsgLength)
            {
                var flags = message.AsSpan(NetlinkMessages.HeaderLength + 8);
                BinaryPrimitives.WriteUInt32LittleEndian(flags, BinaryPrimitives.ReadUInt32LittleEndian(flags) & ~(RtnhFDead | RtnhFLinkdown));
            }
            int error = netlink.Request(message);
            if (error != 0 && error != Native.Interop.Errno.EEXIST)
            {
                throw new CheckpointException(CheckpointErrorKind.RestoreFailed,
                    $"{path}: the kernel refused to add saved {(type == RouteNetlink.RtmNewroute ? "route" : "address")} {messages.IndexOf(saved) + 1} of {messages.Count}: {Native.Interop.Errno.Describe(error)}.", path);
            }
        }
        return ordered.Count;
    }

    // iproute2's restore_handler passes: 0, routes through no gateway without a priority or in the local table; 1, those
    // with a priority; 2, routes through a gateway.
    private static int RoutePass(byte[] message)
    {
        var attributes = message.Length >= NetlinkMessages.HeaderLength + RtmsgLength
            ? NetlinkMessages.Attributes(message.AsSpan(NetlinkMessages.HeaderLength + RtmsgLength)) ?? [] : [];
        return attributes.ContainsKey(RtaGateway) ? 2 : attributes.ContainsKey(RtaPriority) && Table(message) != 255 ? 1 : 0;
    }

    private static uint Table(byte[] message)
    {
        if (NetlinkMessages.Attributes(message.AsSpan(NetlinkMessages.HeaderLength + RtmsgLength)) is { } attributes && attributes.TryGetValue(RtaTable, out var table))
        {
            return BinaryPrimitives.ReadUInt32LittleEndian(table);
        }
        return message[NetlinkMessages.HeaderLength + 4];
    }

    private static uint Rtmsg(byte[] message, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(message.AsSpan(NetlinkMessages.HeaderLength + offset));
}
