using System.Globalization;
using System.Net;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using static CriuPS.Native.Interop.SocketOption;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// IPv4 and IPv6 TCP, UDP, UDP-Lite, ICMP ("ping") and raw sockets (inet_sk_entry in files.img), as CRIU saves
/// them: unbound, bound, listening (with its backlog), datagram sockets bound or connected (a ping socket's port is
/// its echo identifier, a raw socket's its protocol), and with -TcpEstablished established TCP connections with their
/// queues (<see cref="TcpConnection"/>, tcp-stream-&lt;inode&gt;.img), each with its options. What the descriptor
/// does not tell (backlog, shutdown) comes from sock_diag, asked in the socket's own network namespace. Queued UDP
/// datagrams are not saved (as with CRIU: a datagram may be lost anyway). Restore rebuilds them all at once in the
/// engine (<see cref="InetSocketRestore"/>).
/// </summary>
internal sealed class InetSockets : FileKind
{
    public override FdTypes Type => FdTypes.Inetsk;

    public override bool Handles(DescriptorProbe probe)
    {
        if (probe.Status.Type != FileStatus.Socket)
        {
            return false;
        }
        using var copy = probe.Copy();
        return copy is not null && IsInet(copy);
    }

    /// <summary>Whether our descriptor is an IPv4 or IPv6 socket.</summary>
    public static bool IsInet(FileDescriptor socket) => Get(socket, LibC.SOL_SOCKET, LibC.SO_DOMAIN) is var family && (family == LibC.AF_INET || family == LibC.AF_INET6);

    public override string? Problem(DescriptorProbe probe, DumpOptions options)
    {
        using var copy = probe.Copy();
        if (copy is null)
        {
            return null; // closed meanwhile
        }
        var info = InetSocketInfo.Of(copy);
        string what = $"fd {probe.Fd}: {info.Describe()}";
        if (!info.IsSupported)
        {
            return $"{what} (not supported yet)";
        }
        if (TcpPendingConnections.Problem(info, what, options) is { } pending)
        {
            return pending;
        }
        if (info.IsConnection && !TcpConnection.CanSave(info.State))
        {
            return $"{what}: CriuPS saves established, half-closed and connecting TCP connections, not those in this state";
        }
        if (info.IsConnection && !options.TcpEstablished)
        {
            return $"{what}: a{(info.State == InetSocketInfo.SynSent ? " connecting" : "n established")} TCP connection, saved only with {TcpEstablishedSwitch}";
        }
        if ((info.IsUdp || info.IsUdpLite) && Get(copy, SOL_UDP, UDP_CORK) != 0)
        {
            return $"{what} is corked (UDP_CORK): the datagram it is building cannot be saved";
        }
        if (NeedsDevice(info.Local) && GetString(copy, LibC.SOL_SOCKET, LibC.SO_BINDTODEVICE).Length == 0)
        {
            return $"{what} is bound to a link-local address without naming its device (SO_BINDTODEVICE), so its interface cannot be found again";
        }
        return null;
    }

    /// <summary>The switch that saves (and restores) established connections, as messages name it.</summary>
    public const string TcpEstablishedSwitch = "-TcpEstablished";

    public override FileEntry Dump(DescriptorDump dump)
    {
        var session = dump.Session;
        var socket = dump.Copy;
        var info = InetSocketInfo.Of(socket);
        uint inode = (uint)dump.Probe.Status.Inode;
        string shown = $"{info.Describe()} (process {dump.Probe.Pid}, fd {dump.Probe.Fd})";
        using var ns = NetworkNamespace.OfSocket(socket);
        var diag = session.InetSockets.Diag(ns, inode);
        var entry = new InetSkEntry
        {
            Id = dump.Id,
            Ino = inode,
            Family = (uint)info.Family,
            Type = (uint)info.Type,
            Proto = (uint)info.Protocol,
            State = (uint)info.State,
            SrcPort = (uint)info.Local.Port,
            DstPort = (uint)(info.Remote?.Port ?? 0),
            Flags = dump.Flags,
            // For a listener its backlog; CRIU stores the same counter (bytes not acknowledged) for the others.
            Backlog = diag?.SendQueue ?? 0,
            Fown = dump.Owner,
            Opts = SocketOptions.Dump(socket, info.Family),
            IpOpts = InetSocketOptions.DumpIp(socket, info.Family, info.Type, info.Protocol),
            TcpOpts = info.IsTcp ? InetSocketOptions.DumpTcp(socket) : new TcpOptsEntry(),
            NsId = session.ObjectIds.For($"net:[{ns.Inode}]"),
        };
        entry.SrcAddr.AddRange(InetImageAddress.Words(info.Local.Address));
        entry.DstAddr.AddRange(InetImageAddress.Words(info.Remote?.Address ?? (info.Family == LibC.AF_INET ? IPAddress.Any : IPAddress.IPv6Any)));
        if (info.IsUdpLite)
        {
            InetSocketOptions.DumpUdpLite(socket, entry);
        }
        if (info.Family == LibC.AF_INET6)
        {
            entry.V6Only = Get(socket, LibC.SOL_IPV6, LibC.IPV6_V6ONLY) != 0;
            if (NeedsDevice(info.Local))
            {
                entry.Ifname = GetString(socket, LibC.SOL_SOCKET, LibC.SO_BINDTODEVICE);
            }
        }
        if (diag is { Shutdown: not 0 })
        {
            entry.Shutdown = (SkShutdown)diag.Shutdown;
        }
        if (!ns.IsEngines)
        {
            entry.CriupsNetnsInode = ns.Inode;
            if (ns.Name is not null)
            {
                entry.CriupsNetnsName = ns.Name;
            }
        }
        TcpPendingConnections.Dump(dump, info, shown);
        if (info.IsConnection)
        {
            DumpConnection(dump, entry, info, shown);
        }
        else if (info.IsUdp && diag is { ReceiveQueue: > 0 })
        {
            session.Log.Warning($"The {shown} has {diag.ReceiveQueue} bytes of datagrams waiting; they are not saved (a datagram may be lost on any network).");
        }
        session.Log.Detail($"{shown}: saved{(ns.IsEngines ? "" : $" in the {ns}")}");
        return new FileEntry { Type = FdTypes.Inetsk, Id = dump.Id, Isk = entry };
    }

    private static void DumpConnection(DescriptorDump dump, InetSkEntry entry, InetSocketInfo info, string shown)
    {
        var session = dump.Session;
        if (session.InetSockets.Lock is null)
        {
            throw new CheckpointException(CheckpointErrorKind.DumpFailed,
                $"The {shown} was not locked when the tree was frozen (it connected since?); it cannot be saved safely.", dump.Probe.Pid);
        }
        session.InetSockets.Repaired(dump.Copy, entry.Opts.Reuseaddr, info.Describe());
        var (stream, queues, state) = TcpConnection.Dump(dump.Copy, shown);
        entry.State = (uint)state;
        session.AddImageEntry(ImageTypes.TcpStream, entry.Ino.ToString("x", CultureInfo.InvariantCulture), stream, queues);
        session.Log.Detail($"{shown}: {stream.InqLen} bytes received and unread, {stream.OutqLen} bytes not acknowledged of which {stream.UnsqLen} not sent yet");
    }

    // A link-local IPv6 address (or a node- or link-local multicast one) is only meaningful with its interface.
    private static bool NeedsDevice(IPEndPoint local) =>
        local.Port != 0 && (local.Address.IsIPv6LinkLocal || (local.Address.IsIPv6Multicast && (local.Address.GetAddressBytes()[1] & 0x0F) is 1 or 2));

    public override FileDescriptor Open(RestoreSession session, FileEntry file)
    {
        session.InetSockets ??= InetSocketRestore.Build(session);
        return session.InetSockets.For(file.Id);
    }

    public override SavedDescription Saved(ImageSet images, FileEntry file) => new(file.Isk.Flags, file.Isk.Fown);
}
