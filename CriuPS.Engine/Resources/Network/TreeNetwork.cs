using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Process;
using CriuPS.Engine.Resources.Sockets;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Network;

/// <summary>
/// The network namespace a restored tree lives in: a new one made from the image when its root had one of its own (as
/// CRIU does), the one the user names with -NetworkNamespace (CRIU's --join-ns), or else the restorer's. The engine
/// makes the new namespace itself, on its own thread, rather than having the restored root unshare it: the sockets are
/// made by the engine before any process exists (FileDescriptors.OpenForRestore), inside the namespace they belong to,
/// so the namespace must exist first. The engine configures it from inside with a NETLINK_ROUTE socket of its own
/// (devices, sysctls, addresses, routes), holds it by a descriptor, and every restored process joins it (setns) before
/// its credentials change. A failed restore deletes the outer ends of the veth devices it made, and the namespace ends
/// with its last descriptor: nothing is left behind.
/// </summary>
internal sealed class TreeNetwork : IDisposable
{
    private readonly NetworkNamespace? target;
    private readonly TaskKobjIdsEntry rootIds;
    private readonly string directory;
    private readonly List<string> outerEnds = new();

    private TreeNetwork(NetworkNamespace? target, ImageSet images)
    {
        this.target = target;
        rootIds = images.Root.Ids;
        directory = images.Directory;
    }

    /// <summary>Where the tree goes: the namespace named, the one made from the image, or the restorer's (nothing to do).</summary>
    public static TreeNetwork Prepare(RestoreSession session)
    {
        var images = session.Images;
        var options = session.Options;
        if (options.NetworkNamespace is { } path)
        {
            var joined = new TreeNetwork(Open(path), images);
            session.Log.Detail($"the tree joins the {joined.target} ({path}); saved devices are not made");
            return joined;
        }
        if (NetworkNamespaceImages.IsSaved(images))
        {
            return Create(session);
        }
        if (images.Root.Ids.HasCriupsNetnsInode)
        {
            // An image of a CriuPS that joined the dump-time namespace again instead of saving it.
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"Process {images.Root.Pid} lived in the {NetworkNamespace.Describe(images.Root.Ids.CriupsNetnsInode, images.Root.Ids.HasCriupsNetnsName ? images.Root.Ids.CriupsNetnsName : null)}, "
                + "which this image does not hold (it was made before CriuPS saved network namespaces).", images.Directory,
                "Name the network namespace to restore it into with -NetworkNamespace (e.g. /run/netns/NAME).");
        }
        return new TreeNetwork(null, images);
    }

    /// <summary>What this session lacks: entering or making a namespace needs CAP_SYS_ADMIN, making its devices CAP_NET_ADMIN.</summary>
    public static IEnumerable<Obstacle> Obstacles(ImageSet images, RestoreOptions options, SessionPrivileges privileges)
    {
        bool saved = NetworkNamespaceImages.IsSaved(images);
        if ((saved || options.NetworkNamespace is not null) && !privileges.Has(Capability.SysAdmin))
        {
            yield return new(saved && options.NetworkNamespace is null ? "it lived in a network namespace of its own, and making one (unshare) and putting the processes in it (setns) needs CAP_SYS_ADMIN"
                : $"joining the network namespace {options.NetworkNamespace} (setns) needs CAP_SYS_ADMIN", Capability.SysAdmin);
        }
        if (saved && options.NetworkNamespace is null && !privileges.Has(Capability.NetAdmin))
        {
            yield return new("it lived in a network namespace of its own, and making its devices, addresses and routes again needs CAP_NET_ADMIN", Capability.NetAdmin);
        }
    }

    /// <summary>
    /// The namespace a saved socket goes to: the tree's when it lived in the tree's namespace at dump (the root's, as
    /// ids-ROOT.img records it), else the one it lived in (<see cref="NetworkNamespace.Saved"/>).
    /// </summary>
    public NetworkNamespace ForSocket(bool saved, ulong inode, string? name, string shown)
    {
        bool treeNamespace = saved == rootIds.HasCriupsNetnsInode && (!saved || inode == rootIds.CriupsNetnsInode);
        return target is not null && treeNamespace ? target.Duplicate() : NetworkNamespace.Saved(saved, inode, name, shown, directory);
    }

    /// <summary>The namespace a saved socket goes to: <see cref="ForSocket"/>, or where it lived when the session has no tree namespace yet.</summary>
    public static NetworkNamespace SocketNamespace(RestoreSession session, bool saved, ulong inode, string? name, string shown) =>
        session.Network?.ForSocket(saved, inode, name, shown) ?? NetworkNamespace.Saved(saved, inode, name, shown, session.Images.Directory);

    /// <summary>Before the credentials change: the restored process enters the tree's namespace (nothing for the restorer's).</summary>
    public void Join(RestoreSession session, RestoringProcess process)
    {
        if (target is null)
        {
            return;
        }
        ProcessNamespaces.Join(process.Injection, $"/proc/{session.EnginePid}/fd/{target.Handle.Value}", LibC.CLONE_NEWNET, $"the {target}");
        session.Log.Detail($"process {process.Pid}: in the {target}");
    }

    /// <summary>After a failed restore: the outer ends of the veth devices made go (each takes its inner end with it).</summary>
    public void Abandon(Logging.EngineLog log)
    {
        if (outerEnds.Count == 0)
        {
            return;
        }
        using var netlink = RouteNetlink.Open();
        foreach (var outer in outerEnds)
        {
            int error = NetworkLinks.Delete(netlink, outer);
            if (error is not 0 and not Native.Interop.Errno.ENODEV)
            {
                log.Error($"removing the veth device {outer}: {Native.Interop.Errno.Describe(error)}");
            }
        }
        outerEnds.Clear();
    }

    public void Dispose() => target?.Dispose();

    private static NetworkNamespace Open(string path)
    {
        var handle = FileDescriptor.TryOpen(path, O.RDONLY, out int errno) ?? throw new CheckpointException(CheckpointErrorKind.RestoreFailed,
            $"The network namespace to join, '{path}', cannot be opened: {Native.Interop.Errno.Describe(errno)}.", path, "Name a network namespace: /run/netns/NAME (ip netns) or /proc/PID/ns/net.");
        if (!Setns.IsNetwork(handle))
        {
            handle.Dispose();
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"'{path}' is not a network namespace.", path,
                "Name a network namespace: /run/netns/NAME (ip netns) or /proc/PID/ns/net.");
        }
        return NetworkNamespace.FromHandle(handle, path.StartsWith("/run/netns/", StringComparison.Ordinal) ? Path.GetFileName(path) : null);
    }

    private static TreeNetwork Create(RestoreSession session)
    {
        var images = session.Images;
        var devices = NetworkNamespaceImages.Devices(images);
        var sysctls = NetworkNamespaceImages.Sysctls(images);
        string id = NetworkNamespaceImages.Id(images);
        var external = session.Options.ExternalVeth ?? new Dictionary<string, string>();
        foreach (var (inner, outer) in external.Where(e => e.Value.Length is 0 or > 15 || e.Value.Contains('/') || e.Value.Any(char.IsWhiteSpace)))
        {
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed,
                $"-ExternalVeth names '{outer}' as the outer end of '{inner}': a device name has 1 to 15 characters, no '/' and no space.", images.Directory);
        }
        foreach (var inner in external.Keys.Where(k => !devices.Any(d => d.Type == NdType.Veth && d.Name == k)))
        {
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed,
                $"-ExternalVeth names '{inner}', which is no veth device of the saved namespace ({string.Join(", ", devices.Where(d => d.Type == NdType.Veth).Select(d => d.Name))}).", images.Directory);
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var network = new TreeNetwork(NetworkNamespace.FromHandle(Setns.CreateNetwork(), null), images);
        try
        {
            network.Build(session, devices, sysctls, external, id, clock);
        }
        catch
        {
            network.Abandon(session.Log);
            network.Dispose();
            throw;
        }
        return network;
    }

    // Sysctls of the namespace first (devices made afterwards start from "default"), then each device with its own,
    // up as saved, then the addresses, then the routes (which need their devices up and their addresses).
    private void Build(RestoreSession session, List<NetDeviceEntry> devices, NetnsEntry sysctls, IReadOnlyDictionary<string, string> external, string id,
        System.Diagnostics.Stopwatch clock)
    {
        var images = session.Images;
        string File(ImageType type) => Path.Combine(images.Directory, type.FileName(id));
        using var outside = FileDescriptor.Open("/proc/thread-self/ns/net", O.RDONLY);
        int changed, addresses, routes;
        using (target!.Enter())
        {
            using var netlink = RouteNetlink.Open();
            changed = NetworkSysctls.WriteNamespace(sysctls, File(ImageTypes.Netns));
            foreach (var device in devices.OrderBy(d => d.Type == NdType.Loopback ? 0 : 1))
            {
                if (device.Type == NdType.Veth)
                {
                    string outer = external.GetValueOrDefault(device.Name) ?? (device.HasCriupsPeerName ? device.CriupsPeerName : null)
                        ?? throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                            $"{File(ImageTypes.Netdev)}: the veth device '{device.Name}' had its peer in another namespace than the dumping tool's, whose name was not saved.",
                            images.Directory, $"Name the outer end to make with -ExternalVeth @{{ {device.Name} = 'NAME' }}.");
                    Check(NetworkLinks.CreateVeth(netlink, device, outer, outside), $"make the veth device '{device.Name}' with its outer end '{outer}' in the restorer's network namespace",
                        $"A device named '{outer}' may exist already here: name another outer end with -ExternalVeth @{{ {device.Name} = 'NAME' }}, or delete it.");
                    outerEnds.Add(outer);
                }
                changed += NetworkSysctls.WriteDevice(device, File(ImageTypes.Netdev));
                Check(NetworkLinks.Configure(netlink, device), $"set the MTU, address and state of the device '{device.Name}'", null);
            }
            addresses = IpDumpImages.Replay(netlink, IpDumpImages.Read(images.Directory, ImageTypes.Ifaddr, id, IpDumpImages.AddressMagic), RouteNetlink.RtmNewaddr, File(ImageTypes.Ifaddr));
            routes = IpDumpImages.Replay(netlink, IpDumpImages.Read(images.Directory, ImageTypes.Route, id, IpDumpImages.RouteMagic), RouteNetlink.RtmNewroute, File(ImageTypes.Route))
                + IpDumpImages.Replay(netlink, IpDumpImages.Read(images.Directory, ImageTypes.Route6, id, IpDumpImages.RouteMagic), RouteNetlink.RtmNewroute, File(ImageTypes.Route6));
        }
        using (var here = RouteNetlink.Open())
        {
            foreach (var outer in outerEnds)
            {
                Check(NetworkLinks.SetUp(here, outer), $"bring the outer veth end '{outer}' up", null);
            }
        }
        // CRIU saves these too (a firewall's rules, policy routing rules), which CriuPS neither saves nor restores.
        var notRestored = new[] { ImageTypes.Rule, ImageTypes.Iptables, ImageTypes.Ip6tables, ImageTypes.Nftables, ImageTypes.NetnsCt, ImageTypes.NetnsExp }
            .Select(File).Where(System.IO.File.Exists).Select(Path.GetFileName).ToList();
        if (notRestored.Count > 0)
        {
            session.Log.Warning($"the namespace's {string.Join(", ", notRestored)} (rules, firewall, connection tracking) are not restored: CriuPS restores devices, addresses, routes and sysctls");
        }
        session.Log.Detail($"a new {target} made from the image: {devices.Count} device(s) ({string.Join(", ", devices.Select(d => d.Name))}), "
            + $"{addresses} address(es) and {routes} route(s) replayed, {changed} sysctl(s) set; outer veth ends here: {(outerEnds.Count == 0 ? "none" : string.Join(", ", outerEnds))}; "
            + $"{clock.Elapsed.TotalMilliseconds:F1} ms");
    }

    private void Check(int errno, string what, string? action)
    {
        if (errno != 0)
        {
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"The restore could not {what}: {Native.Interop.Errno.Describe(errno)}.", directory, action);
        }
    }
}
