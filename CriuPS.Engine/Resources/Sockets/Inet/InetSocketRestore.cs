using System.Globalization;
using System.Net;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using static CriuPS.Native.Interop.SocketOption;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// Every IPv4/IPv6 socket of an image, rebuilt in the engine in one go, each in its own network namespace (the
/// engine's thread steps into it to create the socket). The saved TCP connections are locked first (the dump's
/// nftables table, put back if it is gone); then sockets that bind, listen or connect as any socket does, then
/// connections, rebuilt in repair mode (which binds to a port in use, their listener's). A TCP socket, and a port
/// several of the other saved sockets share, take SO_REUSEADDR while they bind (a listener's port may still have
/// connections in TIME-WAIT or held elsewhere); every saved option, flag and shutdown comes back afterwards. The
/// connections stay in repair mode, silent, until <see cref="Resume"/>, once the processes are whole: the lock is lifted, then each leaves repair mode. A restore
/// that fails lifts the lock too, and its sockets close without a word (repair mode).
/// </summary>
internal sealed class InetSocketRestore : IDisposable
{
    private sealed class Restored(InetSkEntry entry, IPEndPoint local, IPEndPoint? remote)
    {
        public InetSkEntry Entry { get; } = entry;

        public IPEndPoint Local { get; } = local;

        /// <summary>The peer of a TCP connection or connected UDP socket.</summary>
        public IPEndPoint? Remote { get; } = remote;

        public NetworkNamespace? Namespace { get; set; }

        public FileDescriptor? Socket { get; set; }

        /// <summary>A TCP connection: saved with repair mode, rebuilt with it unless -TcpClose.</summary>
        public bool IsConnection => Entry.Proto == LibC.IPPROTO_TCP && Entry.DstPort != 0;

        public string Shown => InetSocketInfo.Describe((int)Entry.Family, (int)Entry.Type, (int)Entry.Proto, (int)Entry.State, Local, Remote);
    }

    private readonly RestoreSession session;
    private readonly List<Restored> sockets;
    private NetworkLock? networkLock;

    private InetSocketRestore(RestoreSession session, List<Restored> sockets)
    {
        this.session = session;
        this.sockets = sockets;
    }

    /// <summary>
    /// Refuses, before anything is created, an image whose TCP connections cannot be restored as asked: without
    /// -TcpEstablished or -TcpClose, or without libnftables for the lock. The connections stay locked meanwhile, so
    /// that a second try with the switch still finds them alive.
    /// </summary>
    public static void Check(RestoreSession session)
    {
        var images = session.Images;
        var options = session.Options;
        if (images.Inventory.TcpClose && !options.TcpClose)
        {
            throw new CheckpointException(CheckpointErrorKind.TcpEstablishedRequired,
                "The image was dumped with CRIU's --tcp-close: its TCP connections can only come back closed.", images.Directory, "Restore with -TcpClose.");
        }
        var connections = Entries(images).Where(e => e.Proto == LibC.IPPROTO_TCP && e.DstPort != 0).ToList();
        if (connections.Count == 0)
        {
            return;
        }
        var listed = string.Join(", ", connections.Select(e => Describe(e, images.Directory)));
        if (!options.TcpEstablished && !options.TcpClose)
        {
            throw new CheckpointException(CheckpointErrorKind.TcpEstablishedRequired,
                $"The image holds {connections.Count} established TCP connection(s) ({listed}); they stay locked (their packets dropped) until they are restored.",
                images.Directory,
                $"Restore with {InetSockets.TcpEstablishedSwitch} to bring them back, or with -TcpClose to bring them back closed.");
        }
        if (!Nftables.IsAvailable)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"Restoring TCP connections ({listed}) needs {Nftables.Library} for the network lock, and it is not installed.",
                images.Directory, "Install the Debian package libnftables1 (apt-get install libnftables1), then restore again.");
        }
        NetworkLock.CheckPrivilege(connections.Count, listed, images.Directory);
    }

    public static InetSocketRestore Build(RestoreSession session)
    {
        var directory = session.Images.Directory;
        var restore = new InetSocketRestore(session, Entries(session.Images)
            .Select(e => new Restored(e, InetImageAddress.Endpoint(e.Family, e.SrcAddr, e.SrcPort, directory), Peer(e, directory)))
            .ToList());
        try
        {
            restore.FindNamespaces();
            restore.Lock();
            foreach (var socket in restore.sockets.Where(s => !s.IsConnection))
            {
                restore.Create(socket);
            }
            foreach (var socket in restore.sockets.Where(s => s.IsConnection))
            {
                restore.CreateConnection(socket);
            }
            foreach (var socket in restore.sockets)
            {
                restore.Finish(socket);
            }
            session.Log.Detail($"inet sockets: {restore.sockets.Count} rebuilt, {restore.sockets.Count(s => s.IsConnection)} of them TCP connections"
                + (session.Options.TcpClose ? " (brought back closed)" : ""));
        }
        catch
        {
            restore.Dispose();
            throw;
        }
        return restore;
    }

    /// <summary>Our socket for a file id of the image; the session closes it when the restore ends.</summary>
    public FileDescriptor For(uint fileId) => sockets.First(s => s.Entry.Id == fileId).Socket!;

    /// <summary>
    /// The processes are whole: the lock goes first, so that the window probe each connection sends as it leaves
    /// repair mode reaches its peer, which then carries on at once; each connection takes its saved SO_REUSEADDR back.
    /// </summary>
    public void Resume()
    {
        try
        {
            networkLock?.Release();
        }
        catch (NftablesException e)
        {
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"The network lock {networkLock!.Table} could not be removed: {e.Message}.", networkLock.Table, null, e);
        }
        networkLock = null;
        foreach (var socket in sockets.Where(s => s.IsConnection && !session.Options.TcpClose))
        {
            TcpConnection.Resume(socket.Socket!, socket.Entry.Opts.Reuseaddr);
        }
        session.Log.Detail($"connections out of repair mode: {sockets.Count(s => s.IsConnection && !session.Options.TcpClose)}");
    }

    public void Dispose()
    {
        if (networkLock is not null)
        {
            try
            {
                networkLock.Release();
                session.Log.Write($"network lock {networkLock.Table} removed after the failed restore");
            }
            catch (NftablesException e)
            {
                session.Log.Error($"removing the network lock {networkLock.Table}: {e.Message}");
            }
            networkLock = null;
        }
        foreach (var socket in sockets)
        {
            socket.Socket?.Dispose();
            socket.Namespace?.Dispose();
        }
    }

    private static IEnumerable<InetSkEntry> Entries(ImageSet images) =>
        images.Files.Values.Where(f => f.Type == FdTypes.Inetsk).Select(f => f.Isk).OrderBy(e => e.Id);

    /// <summary>A saved socket as messages and Get-CheckpointImage show it.</summary>
    public static string Describe(InetSkEntry entry, string directory) =>
        InetSocketInfo.Describe((int)entry.Family, (int)entry.Type, (int)entry.Proto, (int)entry.State,
            InetImageAddress.Endpoint(entry.Family, entry.SrcAddr, entry.SrcPort, directory), Peer(entry, directory));

    /// <summary>
    /// What the socket was connected to, or null: a port says so, and so does, for a raw or ping socket (whose peer's
    /// port means nothing and is usually 0), an address.
    /// </summary>
    private static IPEndPoint? Peer(InetSkEntry entry, string directory)
    {
        if (entry.DstPort != 0)
        {
            return InetImageAddress.Endpoint(entry.Family, entry.DstAddr, entry.DstPort, directory);
        }
        if (entry.Type != LibC.SOCK_RAW && !InetSocketInfo.IsPingSocket((int)entry.Type, (int)entry.Proto))
        {
            return null;
        }
        var peer = InetImageAddress.Endpoint(entry.Family, entry.DstAddr, 0, directory);
        return InetSocketInfo.IsAny(peer.Address) ? null : peer;
    }

    private void FindNamespaces()
    {
        foreach (var socket in sockets)
        {
            var entry = socket.Entry;
            socket.Namespace = Network.TreeNetwork.SocketNamespace(session, entry.HasCriupsNetnsInode, entry.CriupsNetnsInode,
                entry.HasCriupsNetnsName ? entry.CriupsNetnsName : null, socket.Shown);
        }
    }

    // The image's run id names the dump's table; CRIU falls back on the root's pid for images without one.
    private void Lock()
    {
        var connections = sockets.Where(s => s.IsConnection).Select(s => new LockedConnection(s.Namespace!, s.Local, s.Remote!)).ToList();
        if (connections.Count == 0)
        {
            return;
        }
        var inventory = session.Images.Inventory;
        string runId = inventory.HasDumpCriuRunId ? inventory.DumpCriuRunId : session.Images.Root.Pid.ToString(CultureInfo.InvariantCulture);
        networkLock = NetworkLock.Engage(runId, connections, CheckpointErrorKind.RestoreFailed, ownedBySession: false);
        session.Log.Detail($"network locked with nftables table {networkLock.Table} for {connections.Count} TCP connection(s)");
    }

    private FileDescriptor NewSocket(Restored socket)
    {
        var entry = socket.Entry;
        if (entry.Type != LibC.SOCK_STREAM && entry.Type != LibC.SOCK_DGRAM && entry.Type != LibC.SOCK_RAW)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"files.img: the inet socket id {entry.Id} is of type {entry.Type}; CriuPS restores stream, datagram and raw sockets only.", session.Images.Directory);
        }
        CheckOptions(socket);
        using (socket.Namespace!.Enter())
        {
            socket.Socket = CreateIn(socket);
        }
        if (entry.V6Only)
        {
            Set(socket.Socket, LibC.SOL_IPV6, LibC.IPV6_V6ONLY, 1);
        }
        SocketOptions.BindToDevice(socket.Socket, entry.Opts);
        try
        {
            InetSocketOptions.RestoreIp(socket.Socket, (int)entry.Family, entry.IpOpts);
            if (entry.Proto == LibC.IPPROTO_UDPLITE)
            {
                InetSocketOptions.RestoreUdpLite(socket.Socket, entry);
            }
        }
        catch (NativeException e) when (e.Errno is Errno.EINVAL or Errno.ERANGE)
        {
            // Values the socket took at the dump: one the kernel refuses now was damaged since.
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                $"files.img: the {socket.Shown} (id {entry.Id}) has an IP option the kernel refuses: {e.Message}", session.Images.Directory, ImageDamage.Action, e);
        }
        return socket.Socket;
    }

    // What the kernel would only answer with EINVAL is damage to the image: say so, naming it.
    private void CheckOptions(Restored socket)
    {
        var entry = socket.Entry;
        string? problem = entry.IpOpts switch
        {
            { CriupsOptions.Length: > InetSocketOptions.MaxIpOptionsLength } o => $"{o.CriupsOptions.Length} bytes of IP options (at most {InetSocketOptions.MaxIpOptionsLength})",
            { Raw.IcmpvFilter.Count: > 0 } o when o.Raw.IcmpvFilter.Count != InetSocketOptions.IcmpFilterWords((int)entry.Family) =>
                $"an ICMP filter of {o.Raw.IcmpvFilter.Count} words (one for ICMP, 8 for ICMPv6)",
            _ => null,
        };
        if (problem is not null)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"files.img: the {socket.Shown} (id {entry.Id}) has {problem}.", session.Images.Directory);
        }
    }

    // Raw sockets need CAP_NET_RAW; ping sockets a group of net.ipv4.ping_group_range, which is the namespace's.
    private FileDescriptor CreateIn(Restored socket)
    {
        var entry = socket.Entry;
        try
        {
            return Native.Interop.Socket.Create((int)entry.Family, (int)entry.Type, (int)entry.Proto);
        }
        catch (NativeException e) when (e.Errno == Errno.EPERM && entry.Type == LibC.SOCK_RAW)
        {
            throw MissingPrivilege.For(Capability.NetRaw, $"Creating the {socket.Shown} again", session.Images.Directory, e);
        }
        catch (NativeException e) when (e.Errno == Errno.EACCES && InetSocketInfo.IsPingSocket((int)entry.Type, (int)entry.Proto))
        {
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"The {socket.Shown} cannot be created again: this session's group is outside net.ipv4.ping_group_range{(socket.Namespace!.IsEngines ? "" : $" of the {socket.Namespace}")} ({Errno.Describe(e.Errno)}).",
                socket.Shown, "Widen net.ipv4.ping_group_range (sysctl -w net.ipv4.ping_group_range='0 2147483647'), then restore again.", e);
        }
    }

    private void Create(Restored socket)
    {
        var entry = socket.Entry;
        var fd = NewSocket(socket);
        if (entry.SrcPort != 0)
        {
            // As CRIU, with address reuse while binding: a TCP port keeps connections after its socket is gone (in
            // TIME-WAIT, or accepted and held by a process outside the tree), and saved sockets sharing a port (UDP)
            // bind side by side. Finish puts the saved SO_REUSEADDR back.
            if (entry.Proto == LibC.IPPROTO_TCP || SharesPort(socket))
            {
                Set(fd, LibC.SOL_SOCKET, LibC.SO_REUSEADDR, 1);
            }
            if (entry.Opts.SoReuseport)
            {
                Set(fd, LibC.SOL_SOCKET, LibC.SO_REUSEPORT, 1);
            }
            CheckAddress(Native.Interop.Socket.TryBind(fd, socket.Local), socket, "bound");
        }
        if (entry.State == InetSocketInfo.Listen)
        {
            if (entry.Proto != LibC.IPPROTO_TCP)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"files.img: the inet socket id {entry.Id} listens but is not TCP.", session.Images.Directory);
            }
            CheckAddress(Native.Interop.Socket.TryListen(fd, (int)entry.Backlog), socket, "listen");
        }
        if (socket.Remote is not null)
        {
            int errno = Native.Interop.Socket.TryConnect(fd, socket.Remote);
            if (errno != 0)
            {
                throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"The {socket.Shown} cannot connect again: {Errno.Describe(errno)}.", socket.Shown);
            }
        }
    }

    private void CreateConnection(Restored socket)
    {
        var fd = NewSocket(socket);
        if (session.Options.TcpClose)
        {
            // As CRIU: a socket that was never connected, shut down both ways (reads see the end, writes fail).
            Native.Interop.Socket.TryShutdown(fd, 2);
            return;
        }
        var inode = socket.Entry.Ino.ToString("x", CultureInfo.InvariantCulture);
        var stream = session.Images.Entries(ImageTypes.TcpStream, inode);
        if (stream.Count != 1)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                $"{ImageTypes.TcpStream.FileName(inode)}: the state of the {socket.Shown} is {(stream.Count == 0 ? "missing" : "given more than once")}.", session.Images.Directory);
        }
        TcpConnection.Restore(fd, socket.Namespace!, socket.Local, socket.Remote!, (int)socket.Entry.State, (TcpStreamEntry)stream[0].Message, stream[0].Payload ?? [], socket.Shown);
    }

    private void Finish(Restored socket)
    {
        var entry = socket.Entry;
        var fd = socket.Socket!;
        SocketOptions.Restore(fd, entry.Opts);
        if (entry.Proto == LibC.IPPROTO_TCP)
        {
            InetSocketOptions.RestoreTcp(fd, entry.TcpOpts, socket.Shown, session.Images.Directory);
        }
        if (entry.HasShutdown && entry.Shutdown != SkShutdown.None && !(socket.IsConnection && session.Options.TcpClose))
        {
            // READ, WRITE, BOTH: SHUT_RD, SHUT_WR, SHUT_RDWR; a socket never connected takes it as well (and says ENOTCONN).
            int errno = Native.Interop.Socket.TryShutdown(fd, (int)entry.Shutdown - 1);
            if (errno != 0 && errno != Errno.ENOTCONN)
            {
                throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"The {socket.Shown} cannot be shut down again: {Errno.Describe(errno)}.", socket.Shown);
            }
        }
    }

    // Connections bind in repair mode, which may share any port: only the other sockets that bind count.
    private bool SharesPort(Restored socket) =>
        sockets.Any(s => s != socket && !s.IsConnection && s.Entry.Type == socket.Entry.Type && s.Entry.SrcPort == socket.Entry.SrcPort
            && s.Namespace!.Inode == socket.Namespace!.Inode);

    // An address taken by someone else is the one failure a user can fix: name it, and who holds it.
    private void CheckAddress(int errno, Restored socket, string what)
    {
        if (errno == 0)
        {
            return;
        }
        if (errno == Errno.EADDRINUSE)
        {
            throw new CheckpointException(CheckpointErrorKind.AddressInUse,
                $"The {socket.Shown} cannot be {(what == "listen" ? "listening" : what)} again: {socket.Local} is in use by {Holder(socket)} now.",
                socket.Local.ToString(), $"Stop what uses {socket.Local}, then restore again.");
        }
        if (errno == Errno.EADDRNOTAVAIL)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"The {socket.Shown} cannot be bound again: {socket.Local.Address} is not an address of this machine{(socket.Namespace!.IsEngines ? "" : $" in the {socket.Namespace}")} now.",
                socket.Local.ToString());
        }
        throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"The {socket.Shown} cannot be {what} again: {Errno.Describe(errno)}.", socket.Local.ToString());
    }

    // The socket bound to the same port (and a matching address) in that namespace, and a process holding it.
    private string Holder(Restored socket)
    {
        Dictionary<uint, InetDiagSocket> all;
        using (socket.Namespace!.Enter())
        {
            all = InetDiag.All();
        }
        var mine = sockets.Select(s => s.Socket).OfType<FileDescriptor>().Select(s => FileStatus.Of(s).Inode).ToHashSet();
        var holder = all.Values.FirstOrDefault(s => s.Protocol == (int)socket.Entry.Proto && s.Local.Port == socket.Local.Port && !mine.Contains(s.Inode)
            && (s.Local.Address.Equals(socket.Local.Address) || InetSocketInfo.IsAny(s.Local.Address) || InetSocketInfo.IsAny(socket.Local.Address)));
        if (holder is null)
        {
            // Connections left in TIME-WAIT or closing belong to no process; they share a port only with sockets that
            // all allow SO_REUSEADDR, and this one was saved without it.
            return socket.Entry.Proto == LibC.IPPROTO_TCP && !socket.Entry.Opts.Reuseaddr
                ? "another socket (a connection of that port left in TIME-WAIT or closing, which no process holds: the socket was saved without SO_REUSEADDR, so it cannot bind through it)"
                : "another socket";
        }
        foreach (var process in Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(n => int.TryParse(n, out _)))
        {
            int pid = int.Parse(process!, CultureInfo.InvariantCulture);
            try
            {
                if (ProcFiles.FileDescriptors(pid).Any(fd => Files.DescriptorProbe.SocketInode(pid, fd) == holder.Inode))
                {
                    return $"another socket (socket:[{holder.Inode}] {holder.Local}, held by process {pid} '{ProcStat.Read(pid).Comm}')";
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // ended meanwhile
            }
        }
        return $"another socket (socket:[{holder.Inode}] {holder.Local})";
    }
}
