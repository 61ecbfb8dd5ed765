using System.Numerics;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using static CriuPS.Native.Interop.SocketOption;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// AF_NETLINK sockets (netlink_sk_entry in files.img), as CRIU saves them: protocol, the port id it is bound to, its
/// multicast groups, the port and group it is connected to, with the SOL_SOCKET options; CriuPS adds the socket type,
/// the SOL_NETLINK flags, groups above 32 (CRIU refuses those) and the network namespace. As with CRIU, a socket
/// with a message waiting to be read is refused: a reply or notification the process has not read yet would be lost,
/// and the kernel offers no way to queue it again. A port id taken by another socket at restore is given up for one
/// the kernel picks (as CRIU does: the kernel answers whatever port asks), with a warning in the log.
/// </summary>
internal sealed class NetlinkSockets : FileKind
{
    /// <summary>netlink_sk_entry's state: connected (connect(2) named a port or group) or not.</summary>
    private const uint Unconnected = 0, Connected = 1;

    // MAX_LINKS: netlink protocols are numbered below it.
    private const uint MaxProtocols = 32;

    private static readonly (int Option, string Name)[] Flags =
    [
        (NETLINK_PKTINFO, "NETLINK_PKTINFO"), (NETLINK_BROADCAST_ERROR, "NETLINK_BROADCAST_ERROR"), (NETLINK_NO_ENOBUFS, "NETLINK_NO_ENOBUFS"),
        (NETLINK_LISTEN_ALL_NSID, "NETLINK_LISTEN_ALL_NSID"), (NETLINK_CAP_ACK, "NETLINK_CAP_ACK"), (NETLINK_EXT_ACK, "NETLINK_EXT_ACK"),
        (NETLINK_GET_STRICT_CHK, "NETLINK_GET_STRICT_CHK"),
    ];

    public override FdTypes Type => FdTypes.Netlinksk;

    public override bool Handles(DescriptorProbe probe)
    {
        if (probe.Status.Type != FileStatus.Socket)
        {
            return false;
        }
        using var copy = probe.Copy();
        return copy is not null && Get(copy, LibC.SOL_SOCKET, LibC.SO_DOMAIN) == LibC.AF_NETLINK;
    }

    public override string? Problem(DescriptorProbe probe, DumpOptions options)
    {
        using var copy = probe.Copy();
        return copy is null ? null : Waiting(copy, $"fd {probe.Fd}: {Describe(copy)}");
    }

    private static string? Waiting(FileDescriptor socket, string what) =>
        NetlinkSocket.PendingMessageLength(socket) is int length
            ? $"{what} has a message of {length} bytes waiting to be read, which cannot be saved (the kernel cannot queue it again; CRIU refuses it too)"
            : null;

    public override FileEntry Dump(DescriptorDump dump)
    {
        var socket = dump.Copy;
        string shown = $"{Describe(socket)} (process {dump.Probe.Pid}, fd {dump.Probe.Fd})";
        if (Waiting(socket, $"The {shown}") is { } waiting)
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported, waiting + ".", dump.Probe.Pid);
        }
        var (portId, _) = NetlinkSocket.Name(socket);
        var (peerPort, peerGroups) = NetlinkSocket.Peer(socket);
        using var ns = NetworkNamespace.OfSocket(socket);
        var entry = new NetlinkSkEntry
        {
            Id = dump.Id,
            Ino = (uint)dump.Probe.Status.Inode,
            Protocol = (uint)Get(socket, LibC.SOL_SOCKET, LibC.SO_PROTOCOL),
            State = peerPort != 0 || peerGroups != 0 ? Connected : Unconnected,
            Flags = dump.Flags,
            Portid = portId,
            DstPortid = peerPort,
            // The peer's group comes back as a one-bit mask; the image keeps its number.
            DstGroup = peerGroups == 0 ? 0 : (uint)BitOperations.TrailingZeroCount(peerGroups) + 1,
            Fown = dump.Owner,
            Opts = SocketOptions.Dump(socket, LibC.AF_NETLINK),
            NsId = dump.Session.ObjectIds.For($"net:[{ns.Inode}]"),
            CriupsType = (uint)Get(socket, LibC.SOL_SOCKET, LibC.SO_TYPE),
            CriupsPktinfo = Get(socket, LibC.SOL_NETLINK, NETLINK_PKTINFO) != 0,
            CriupsBroadcastError = Get(socket, LibC.SOL_NETLINK, NETLINK_BROADCAST_ERROR) != 0,
            CriupsNoEnobufs = Get(socket, LibC.SOL_NETLINK, NETLINK_NO_ENOBUFS) != 0,
            CriupsListenAllNsid = Get(socket, LibC.SOL_NETLINK, NETLINK_LISTEN_ALL_NSID) != 0,
            CriupsCapAck = Get(socket, LibC.SOL_NETLINK, NETLINK_CAP_ACK) != 0,
            CriupsExtAck = Get(socket, LibC.SOL_NETLINK, NETLINK_EXT_ACK) != 0,
            CriupsGetStrictChk = Get(socket, LibC.SOL_NETLINK, NETLINK_GET_STRICT_CHK) != 0,
        };
        entry.Groups.AddRange(NetlinkSocket.Memberships(socket));
        if (!ns.IsEngines)
        {
            entry.CriupsNetnsInode = ns.Inode;
            if (ns.Name is not null)
            {
                entry.CriupsNetnsName = ns.Name;
            }
        }
        dump.Session.Log.Detail($"{shown}: saved{(ns.IsEngines ? "" : $" in the {ns}")}");
        return new FileEntry { Type = FdTypes.Netlinksk, Id = dump.Id, Nlsk = entry };
    }

    private static string Describe(FileDescriptor socket) =>
        Describe((uint)Get(socket, LibC.SOL_SOCKET, LibC.SO_PROTOCOL), NetlinkSocket.Name(socket).PortId);

    /// <summary>"netlink socket (protocol 0, port 4242)": how messages and Get-CheckpointImage name it.</summary>
    public static string Describe(uint protocol, uint portId) =>
        $"netlink socket (protocol {protocol}{(Protocols.TryGetValue(protocol, out var name) ? $", {name}" : "")}, {(portId == 0 ? "unbound" : $"port {portId}")})";

    public static string Describe(NetlinkSkEntry entry) => Describe(entry.Protocol, entry.Portid);

    private static readonly Dictionary<uint, string> Protocols = new()
    {
        [0] = "NETLINK_ROUTE", [4] = "NETLINK_SOCK_DIAG", [9] = "NETLINK_AUDIT", [12] = "NETLINK_NETFILTER",
        [15] = "NETLINK_KOBJECT_UEVENT", [16] = "NETLINK_GENERIC",
    };

    public override FileDescriptor Open(RestoreSession session, FileEntry file)
    {
        var entry = file.Nlsk;
        string shown = Describe(entry);
        CheckValues(entry, shown, session.Images.Directory);
        using var ns = Network.TreeNetwork.SocketNamespace(session, entry.HasCriupsNetnsInode, entry.CriupsNetnsInode,
            entry.HasCriupsNetnsName ? entry.CriupsNetnsName : null, shown);
        FileDescriptor socket;
        using (ns.Enter())
        {
            socket = Step(shown, "be created", () => Native.Interop.Socket.Create(LibC.AF_NETLINK, entry.HasCriupsType ? (int)entry.CriupsType : LibC.SOCK_RAW, (int)entry.Protocol));
        }
        try
        {
            Rebuild(session, socket, entry, shown);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        session.Log.Detail($"{shown}: rebuilt{(ns.IsEngines ? "" : $" in the {ns}")}");
        return socket;
    }

    private static void CheckValues(NetlinkSkEntry entry, string shown, string directory)
    {
        string? problem = (entry.HasCriupsType && entry.CriupsType != LibC.SOCK_RAW && entry.CriupsType != LibC.SOCK_DGRAM) ? $"type {entry.CriupsType}"
            : entry.Protocol >= MaxProtocols ? $"protocol {entry.Protocol} (netlink has {MaxProtocols})"
            : entry.State is not Unconnected and not Connected ? $"state {entry.State}"
            : entry.DstGroup > 32 ? $"a peer group {entry.DstGroup} (at most 32)"
            : entry.Groups.Count > 1024 ? $"{entry.Groups.Count} words of groups"
            : null;
        if (problem is not null)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"files.img: the {shown} (id {entry.Id}) has {problem}.", directory);
        }
    }

    // Bound with its port and first 32 groups (bind joins those), the groups above with NETLINK_ADD_MEMBERSHIP, then
    // connected, then its options.
    private static void Rebuild(RestoreSession session, FileDescriptor socket, NetlinkSkEntry entry, string shown)
    {
        uint firstGroups = entry.Groups.Count > 0 ? entry.Groups[0] : 0;
        if (entry.Portid != 0)
        {
            int errno = NetlinkSocket.TryBind(socket, entry.Portid, firstGroups);
            if (errno == Errno.EADDRINUSE)
            {
                session.Log.Warning($"The {shown}: port {entry.Portid} is taken by another socket now; it was bound to a port the kernel picked (as CRIU does).");
                errno = NetlinkSocket.TryBind(socket, 0, firstGroups);
            }
            Check(errno, shown, $"be bound to port {entry.Portid}");
            firstGroups = 0;
        }
        for (int word = 0; word < entry.Groups.Count; word++)
        {
            uint bits = word == 0 ? firstGroups : entry.Groups[word];
            for (; bits != 0; bits &= bits - 1)
            {
                int group = (word * 32) + BitOperations.TrailingZeroCount(bits) + 1;
                try
                {
                    Set(socket, LibC.SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group);
                }
                catch (NativeException e) when (e.Errno == Errno.EINVAL)
                {
                    // The socket was in it at the dump: a group its protocol does not have was damaged since.
                    throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                        $"files.img: the {shown} (id {entry.Id}) is in group {group}, which its protocol does not have.", session.Images.Directory, ImageDamage.Action, e);
                }
            }
        }
        if (entry.State == Connected)
        {
            Check(NetlinkSocket.TryConnect(socket, entry.DstPortid, entry.DstGroup == 0 ? 0 : 1u << (int)(entry.DstGroup - 1)), shown,
                $"be connected to port {entry.DstPortid}{(entry.DstGroup == 0 ? "" : $" and group {entry.DstGroup}")}");
        }
        var saved = new[] { entry.CriupsPktinfo, entry.CriupsBroadcastError, entry.CriupsNoEnobufs, entry.CriupsListenAllNsid, entry.CriupsCapAck, entry.CriupsExtAck, entry.CriupsGetStrictChk };
        for (int i = 0; i < Flags.Length; i++)
        {
            if (saved[i])
            {
                var (option, name) = Flags[i];
                Step(shown, $"take {name}", () => Set(socket, LibC.SOL_NETLINK, option, 1));
            }
        }
        SocketOptions.Restore(socket, entry.Opts);
    }

    private static void Check(int errno, string shown, string what)
    {
        if (errno != 0)
        {
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"The {shown} cannot {what} again: {Errno.Describe(errno)}.", shown);
        }
    }

    private static void Step(string shown, string what, Action set) => Step(shown, what, () =>
    {
        set();
        return 0;
    });

    private static T Step<T>(string shown, string what, Func<T> run)
    {
        try
        {
            return run();
        }
        catch (NativeException e)
        {
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"The {shown} cannot {what} again: {Errno.Describe(e.Errno)}.", shown, null, e);
        }
    }

    public override SavedDescription Saved(ImageSet images, FileEntry file) => new(file.Nlsk.Flags, file.Nlsk.Fown);
}
