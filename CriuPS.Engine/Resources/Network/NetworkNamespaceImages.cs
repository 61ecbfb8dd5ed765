using System.Globalization;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Process;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Resources.Network;

/// <summary>
/// A network namespace of the tree's own (unshare -n, ip netns, a container's), saved as CRIU saves it, under the
/// root's net_ns_id: netdev-ID.img (its devices, with their IPv4/IPv6 sysctls), ifaddr-ID.img, route-ID.img and
/// route6-ID.img (iproute2 dumps, <see cref="IpDumpImages"/>) and netns-ID.img (its sysctls); inventory.img's root_ids
/// names the dumping engine's namespace, so that CRIU, seeing the root's differ, makes the namespace from the images
/// too. As CRIU, one such namespace, the root's, shared by every process of the tree. The engine reads it from inside:
/// its thread enters the namespace (setns) for the time of the reading.
/// </summary>
internal static class NetworkNamespaceImages
{
    /// <summary>Before the freeze: what keeps the network namespace of <paramref name="pid"/> (the root) from being saved, its devices named.</summary>
    public static IEnumerable<string> Problems(int pid)
    {
        using var ns = FileDescriptor.TryOpen($"/proc/{pid}/ns/net", O.RDONLY, out _);
        if (ns is null)
        {
            return []; // it ended meanwhile: the tree's check looks again
        }
        using (Setns.EnterNetwork(ns))
        {
            using var netlink = RouteNetlink.Open();
            return NetworkLinks.Problems(NetworkLinks.Read(netlink)).ToList();
        }
    }

    /// <summary>At dump, for the root: a network namespace of its own is saved, read from inside while the tree is frozen.</summary>
    public static void Dump(DumpSession session, DumpedProcess root)
    {
        if (ProcessNamespaces.IsEngines(root.Pid, "net"))
        {
            return;
        }
        string id = root.Ids.NetNsId.ToString(CultureInfo.InvariantCulture);
        List<NetworkLink> outside;
        using (var engines = RouteNetlink.Open())
        {
            outside = NetworkLinks.Read(engines);
        }
        using var ns = FileDescriptor.Open($"/proc/{root.Pid}/ns/net", O.RDONLY);
        using (Setns.EnterNetwork(ns))
        {
            using var netlink = RouteNetlink.Open();
            var links = NetworkLinks.Read(netlink);
            // The pre-flight check refused these; the namespace may have changed since.
            if (NetworkLinks.Problems(links).ToList() is { Count: > 0 } problems)
            {
                throw new CheckpointException(CheckpointErrorKind.Unsupported, $"Process {root.Pid} cannot be checkpointed: {string.Join("; ", problems)}.", root.Pid);
            }
            using (var devices = session.CreateImage(ImageTypes.Netdev, id))
            {
                foreach (var link in links)
                {
                    var entry = NetworkLinks.Entry(link, link.IsVeth ? NetworkLinks.PeerName(link, outside) : null);
                    NetworkSysctls.ReadDevice(entry);
                    devices.WriteEntry(entry);
                }
            }
            var addresses = IpDumpImages.Addresses(netlink);
            IpDumpImages.Write(session, ImageTypes.Ifaddr, id, IpDumpImages.AddressMagic, addresses);
            var routes = IpDumpImages.Routes(netlink, ipv6: false);
            IpDumpImages.Write(session, ImageTypes.Route, id, IpDumpImages.RouteMagic, routes);
            var routes6 = IpDumpImages.Routes(netlink, ipv6: true);
            IpDumpImages.Write(session, ImageTypes.Route6, id, IpDumpImages.RouteMagic, routes6);
            session.WriteSingle(ImageTypes.Netns, id, NetworkSysctls.ReadNamespace());
            session.Log.Detail($"network namespace of {root.Pid}: {links.Count} device(s) ({string.Join(", ", links.Select(l => l.Name))}), "
                + $"{addresses.Count} address(es), {routes.Count} IPv4 and {routes6.Count} IPv6 route(s)");
        }
    }

    /// <summary>Whether the image's root had a network namespace of its own, saved (its root_ids name another).</summary>
    public static bool IsSaved(ImageSet images)
    {
        var rootIds = images.Inventory.RootIds;
        return rootIds is not null && rootIds.HasNetNsId && rootIds.NetNsId != images.Root.Ids.NetNsId;
    }

    /// <summary>The saved devices of the root's namespace; ImageCorrupt or ImageIncompatible naming the file for one CriuPS cannot make.</summary>
    public static List<NetDeviceEntry> Devices(ImageSet images)
    {
        string id = Id(images);
        var file = Path.Combine(images.Directory, ImageTypes.Netdev.FileName(id));
        var devices = images.Entries(ImageTypes.Netdev, id).Select(e => (NetDeviceEntry)e.Message).ToList();
        foreach (var device in devices)
        {
            if (device.Type is not (NdType.Loopback or NdType.Veth))
            {
                throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                    $"{file}: the device '{device.Name}' is of type {device.Type}; CriuPS makes loopback and veth devices only.", file);
            }
            if (device.Name.Length is 0 or > 15 || device.Name.Contains('/') || device.Ifindex == 0 || (device.HasCriupsPeerName && device.CriupsPeerName.Length is 0 or > 15))
            {
                throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                    $"{file}: the device '{device.Name}' (index {device.Ifindex}) has no valid name or index (a device name has 1 to 15 characters, no '/').", file);
            }
        }
        return devices;
    }

    /// <summary>The saved sysctls of the root's namespace; ImageCorrupt naming the file when it lacks its one entry.</summary>
    public static NetnsEntry Sysctls(ImageSet images)
    {
        string id = Id(images);
        var entries = images.Entries(ImageTypes.Netns, id);
        var file = Path.Combine(images.Directory, ImageTypes.Netns.FileName(id));
        return entries.Count == 1 ? (NetnsEntry)entries[0].Message : throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
            $"{file}: the root's network namespace ({id}) is not the dumping tool's, and this image should hold its sysctls in one entry; it holds {entries.Count}.", file);
    }

    public static string Id(ImageSet images) => images.Root.Ids.NetNsId.ToString(CultureInfo.InvariantCulture);
}
