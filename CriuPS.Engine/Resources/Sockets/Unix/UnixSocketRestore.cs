using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using Google.Protobuf;
using static CriuPS.Engine.Resources.Sockets.UnixSocketName;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// Every unix socket of an image, rebuilt in the engine in one go, in the order the kernel needs: create (both ends
/// of a socketpair at once), bind, listen; make each accepted connection by connecting to its listener and
/// accepting, then queue the connections still waiting; refill every receive queue by sending its messages again
/// from the other end (datagrams from their saved senders, before the socket connects to its peer and stops taking
/// messages from anyone else), each message with the descriptors it carried (opened in the engine first); then shut
/// down, set options and file flags, and remove the names that were already removed at the checkpoint. The processes
/// pull in their sockets afterwards.
/// </summary>
internal sealed class UnixSocketRestore : IDisposable
{
    private sealed class Restored(UnixSkEntry entry, IReadOnlyList<ImageEntry> queue)
    {
        public UnixSkEntry Entry { get; } = entry;

        public IReadOnlyList<ImageEntry> Queue { get; } = queue;

        public FileDescriptor? Socket { get; set; }

        /// <summary>The far end of a socketpair made for a connection whose other end was gone: it refills the queue, then closes.</summary>
        public FileDescriptor? Orphan { get; set; }

        /// <summary>The file binding to a path name made.</summary>
        public FileStatus? BoundFile { get; set; }

        /// <summary>Made with socketpair(2) (its peer was made with it).</summary>
        public bool Paired { get; set; }

        /// <summary>For the server side of an accepted connection, the listener it came from.</summary>
        public Restored? AcceptedFrom { get; set; }

        public string Shown => Describe(Entry.Type, Entry.Name.Span);

        public bool IsStream => Entry.Type != LibC.SOCK_DGRAM;
    }

    private readonly RestoreSession session;
    private readonly List<Restored> sockets;
    private readonly Dictionary<uint, Restored> byInode;
    private readonly Dictionary<uint, Restored> byId;
    private readonly Dictionary<ByteString, FileDescriptor> strangers = new();
    private readonly HashSet<FileDescriptor> unlimited = new();
    private Dictionary<uint, UnixDiagSocket>? live;

    private UnixSocketRestore(RestoreSession session, List<Restored> sockets)
    {
        this.session = session;
        this.sockets = sockets;
        byInode = sockets.GroupBy(s => s.Entry.Ino).ToDictionary(g => g.Key, g => g.First());
        byId = sockets.ToDictionary(s => s.Entry.Id);
    }

    public static UnixSocketRestore Build(RestoreSession session)
    {
        var queues = session.Images.Entries(ImageTypes.SkQueues).ToLookup(e => ((SkPacketEntry)e.Message).IdFor);
        var entries = session.Images.Files.Values.Where(f => f.Type == FdTypes.Unixsk).Select(f => f.Usk).OrderBy(e => e.Id).ToList();
        var restore = new UnixSocketRestore(session, entries.Select(e => new Restored(e, queues[e.Id].ToList())).ToList());
        try
        {
            restore.CheckSupported();
            restore.Create();
            restore.Bind();
            restore.Listen();
            restore.ConnectStreams();
            restore.RefillDatagrams();
            restore.RefillStreams();
            restore.Finish();
            session.Log.Detail($"unix sockets: {restore.sockets.Count} rebuilt, {restore.sockets.Sum(s => s.Queue.Count)} queued message(s) put back");
        }
        catch
        {
            restore.Dispose();
            throw;
        }
        finally
        {
            foreach (var socket in restore.strangers.Values)
            {
                socket.Dispose();
            }
        }
        return restore;
    }

    /// <summary>Our socket for a file id of the image; the session closes it when the restore ends.</summary>
    public FileDescriptor For(uint fileId) => byId[fileId].Socket!;

    public void Dispose()
    {
        foreach (var socket in sockets)
        {
            socket.Socket?.Dispose();
            socket.Orphan?.Dispose();
        }
    }

    // CRIU marks sockets it handled specially (external peers, its own service socket, plugins) in uflags.
    private void CheckSupported()
    {
        foreach (var socket in sockets.Where(s => s.Entry.Uflags != 0))
        {
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"files.img: the {socket.Shown} (id {socket.Entry.Id}) was saved by CRIU as external or special (flags {socket.Entry.Uflags:x}); CriuPS cannot restore it.",
                session.Images.Directory);
        }
        CheckInFlight();
        foreach (var socket in sockets.Where(s => s.Entry.Peer != 0 && !byInode.ContainsKey(s.Entry.Peer)))
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                $"files.img: the {socket.Shown} (id {socket.Entry.Id}) is connected to socket:[{socket.Entry.Peer}], which is not in the image.",
                session.Images.Directory);
        }
    }

    // The only ancillary data saved with a message is descriptors in flight (SCM_RIGHTS), as many as one message
    // can carry (SCM_MAX_FD), each a file of files.img.
    private void CheckInFlight()
    {
        const int ScmMaxFd = 253;
        string path = System.IO.Path.Combine(session.Images.Directory, ImageTypes.SkQueues.FileName(null));
        foreach (var socket in sockets)
        {
            foreach (var scm in socket.Queue.SelectMany(m => ((SkPacketEntry)m.Message).Scm))
            {
                string where = $"a message queued on the {socket.Shown} (id {socket.Entry.Id})";
                if (scm.Type != LibC.SCM_RIGHTS)
                {
                    throw ImageDamage.In(path, $"{where} carries ancillary data of type {scm.Type}; only descriptors (SCM_RIGHTS, {LibC.SCM_RIGHTS}) are saved.");
                }
                if (scm.Rights.Count is 0 or > ScmMaxFd)
                {
                    throw ImageDamage.In(path, $"{where} carries {scm.Rights.Count} descriptors; a message carries 1 to {ScmMaxFd}.");
                }
                foreach (uint id in scm.Rights.Where(id => !session.Images.Files.ContainsKey(id)))
                {
                    throw ImageDamage.In(path, $"{where} carries the file with id {id}, which files.img does not have.");
                }
            }
        }
    }

    // The descriptors a saved message carries: a socket of this image, or the engine's description of the file.
    private int[] Rights(ImageEntry message, Restored receiver)
    {
        var rights = new List<int>();
        foreach (uint id in ((SkPacketEntry)message.Message).Scm.SelectMany(s => s.Rights))
        {
            string what = $"A descriptor in flight to the {receiver.Shown} (id {receiver.Entry.Id}), file id {id},";
            var description = byId.TryGetValue(id, out var socket) ? socket.Socket
                : Files.FileDescriptors.OpenDescription(session, id, what);
            rights.Add(description?.Value ?? throw new CheckpointException(CheckpointErrorKind.RestoreFailed,
                $"{what} can only be opened by a restored process, and is sent again before any exists.", receiver.Shown));
        }
        return rights.ToArray();
    }

    private Restored? PeerOf(Restored socket) => socket.Entry.Peer != 0 ? byInode[socket.Entry.Peer] : null;

    // An accepted connection carries its listener's name: that listener, when the image has it.
    private Restored? ListenerNamed(Restored socket) =>
        socket.Entry.Name.Length == 0 ? null
        : sockets.FirstOrDefault(l => l.Entry.State == UnixDiagSocket.StateListen && l.Entry.Type == socket.Entry.Type
            && l.Entry.Name.Equals(socket.Entry.Name) && l.Entry.NameDir == socket.Entry.NameDir);

    private void Create()
    {
        foreach (var socket in sockets.Where(s => s.Socket is null && s.AcceptedFrom is null))
        {
            var entry = socket.Entry;
            var peer = PeerOf(socket);
            bool mutual = peer is not null && peer != socket && peer.Entry.Peer == entry.Ino;
            if (socket.IsStream && entry.State == UnixDiagSocket.StateEstablished && peer is null)
            {
                // Connected, but the other end has closed: a pair whose far end refills the queue and then closes.
                var (near, far) = Native.Interop.Socket.Pair((int)entry.Type);
                (socket.Socket, socket.Orphan) = (near, far);
            }
            else if (socket.IsStream && mutual && ListenerNamed(socket) is { } listener)
            {
                socket.AcceptedFrom = listener; // made by accept(2); its client is created on its own
            }
            else if (socket.IsStream && mutual && ListenerNamed(peer!) is { } peerListener)
            {
                peer!.AcceptedFrom = peerListener;
                socket.Socket = Native.Interop.Socket.Create((int)entry.Type);
            }
            else if (mutual && (socket.IsStream || entry.Name.Length == 0 || peer!.Entry.Name.Length == 0))
            {
                var (first, second) = Native.Interop.Socket.Pair((int)entry.Type);
                (socket.Socket, peer!.Socket) = (first, second);
                socket.Paired = peer.Paired = true;
            }
            else if (socket.IsStream && entry.State == UnixDiagSocket.StateEstablished && peer!.Entry.State != UnixDiagSocket.StateListen)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                    $"files.img: the {socket.Shown} (id {entry.Id}) is connected to socket:[{entry.Peer}], which is not connected back to it.", session.Images.Directory);
            }
            else
            {
                socket.Socket = Native.Interop.Socket.Create((int)entry.Type);
            }
        }
    }

    /// <summary>
    /// Every name is bound again. A connected stream socket that was not made by accept(2) here (a socketpair, a
    /// connection whose peer had closed) may carry the name of a listener it was accepted from: that name stays with
    /// the listener, and with a name some other socket holds now the socket comes back unnamed.
    /// </summary>
    private void Bind()
    {
        foreach (var socket in sockets.Where(s => s.Entry.Name.Length > 0 && s.AcceptedFrom is null))
        {
            if (!(socket.IsStream && (socket.Paired || socket.Orphan is not null)))
            {
                socket.BoundFile = UnixSocketFile.Bind(socket.Socket!, socket.Entry, InUse);
            }
            else if (ListenerNamed(socket) is not null)
            {
                WarnNameLost(socket, "its listener holds it");
            }
            else if (UnixSocketFile.TryBind(socket.Socket!, socket.Entry, InUse, out var file) is { } taken)
            {
                WarnNameLost(socket, taken);
            }
            else
            {
                socket.BoundFile = file;
            }
        }
    }

    private void WarnNameLost(Restored socket, string why) =>
        session.Log.Warning($"The {socket.Shown} (id {socket.Entry.Id}) comes back without its name, since {why}: getsockname(2) on it and getpeername(2) on its peer report none.");

    // Whether a live socket (not one connected through a listener, which only shares the listener's file) is bound to the file.
    private bool InUse(FileStatus file)
    {
        live ??= UnixDiag.All();
        uint major = (uint)(((file.Device >> 8) & 0xfff) | ((file.Device >> 32) & ~0xfffUL));
        uint minor = (uint)((file.Device & 0xff) | ((file.Device >> 12) & ~0xffUL));
        return live.Values.Any(s => s.BoundInode == (uint)file.Inode && s.BoundDevice >> 20 == major && (s.BoundDevice & 0xFFFFF) == minor
            && !(s.Type != LibC.SOCK_DGRAM && s.State == UnixDiagSocket.StateEstablished));
    }

    private void Listen()
    {
        foreach (var socket in sockets.Where(s => s.Entry.State == UnixDiagSocket.StateListen))
        {
            Native.Interop.Socket.Listen(socket.Socket!, (int)socket.Entry.Backlog);
        }
    }

    /// <summary>
    /// Accepted connections first (connect, then accept at once, so each server end meets its own client), then the
    /// connections that were waiting, in the listener's order.
    /// </summary>
    private void ConnectStreams()
    {
        foreach (var server in sockets.Where(s => s.AcceptedFrom is not null))
        {
            var client = PeerOf(server)!;
            Connect(client, server.AcceptedFrom!);
            server.Socket = Native.Interop.Socket.Accept(server.AcceptedFrom!.Socket!);
        }
        var waiting = sockets
            .Where(s => s.IsStream && s.Entry.State == UnixDiagSocket.StateEstablished && PeerOf(s) is { Entry.State: UnixDiagSocket.StateListen })
            .OrderBy(s => s.Entry.Peer).ThenBy(s => s.Entry.HasCriupsBacklogPosition ? s.Entry.CriupsBacklogPosition : uint.MaxValue).ThenBy(s => s.Entry.Id);
        foreach (var client in waiting)
        {
            Connect(client, PeerOf(client)!);
        }
    }

    private void Connect(Restored socket, Restored to)
    {
        if (to.Entry.Name.Length == 0)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                $"files.img: the {socket.Shown} (id {socket.Entry.Id}) is connected to an unnamed socket (id {to.Entry.Id}) that it could not have reached.", session.Images.Directory);
        }
        int errno = Native.Interop.Socket.TryConnect(socket.Socket!, UnixSocketFile.Address(to.Entry));
        if (errno != 0)
        {
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed,
                $"The {socket.Shown} (id {socket.Entry.Id}) cannot connect again to the {to.Shown}: {Errno.Describe(errno)}.", to.Shown);
        }
    }

    /// <summary>
    /// A datagram socket takes messages from anyone until it connects, then from its peer only: its queue is refilled
    /// up to the last message from someone else, then it connects, then its peer sends the rest.
    /// </summary>
    private void RefillDatagrams()
    {
        foreach (var socket in sockets.Where(s => !s.IsStream))
        {
            var peer = PeerOf(socket);
            if (socket.Paired)
            {
                foreach (var message in socket.Queue)
                {
                    Send(peer!.Socket!, message, to: default, socket);
                }
                continue;
            }
            int fromOthers = peer is null ? socket.Queue.Count : LastIndexNotFrom(socket.Queue, peer.Entry.Name.Span) + 1;
            foreach (var message in socket.Queue.Take(fromOthers))
            {
                Send(SenderOf(message, socket), message, Addressed(socket), socket);
            }
            if (peer is not null)
            {
                Connect(socket, peer);
            }
            foreach (var message in socket.Queue.Skip(fromOthers))
            {
                Send(peer!.Socket!, message, Addressed(socket), socket);
            }
        }
    }

    private static int LastIndexNotFrom(IReadOnlyList<ImageEntry> queue, ReadOnlySpan<byte> name)
    {
        for (int i = queue.Count - 1; i >= 0; i--)
        {
            if (!((SkPacketEntry)queue[i].Message).CriupsSenderName.Span.SequenceEqual(name))
            {
                return i;
            }
        }
        return -1;
    }

    private byte[] Addressed(Restored socket) =>
        socket.Entry.Name.Length > 0 ? UnixSocketFile.Address(socket.Entry) : throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
            $"sk-queues.img: the unnamed {socket.Shown} (id {socket.Entry.Id}) has messages from sockets that could not have reached it.", session.Images.Directory);

    // The socket a saved datagram comes from again: the one of the image bound to the sender's name; else one of our
    // own for each name (closed once the queues are full), bound to it when it is an abstract name nobody holds,
    // unnamed otherwise.
    private FileDescriptor SenderOf(ImageEntry message, Restored receiver)
    {
        var name = ((SkPacketEntry)message.Message).CriupsSenderName;
        if (name.Length > 0 && sockets.FirstOrDefault(s => !s.IsStream && s.Entry.Name.Equals(name) && s.Socket is not null) is { } known)
        {
            return known.Socket!;
        }
        if (!strangers.TryGetValue(name, out var sender))
        {
            sender = Native.Interop.Socket.Create(LibC.SOCK_DGRAM);
            strangers[name] = sender;
            if (name.Length > 0 && !(IsAbstract(name.Span) && Native.Interop.Socket.TryBind(sender, name.Span) == 0))
            {
                session.Log.Warning($"A datagram queued on the {receiver.Shown} came from {Display(name.Span)}, which is not in the image: recvfrom(2) will report an unnamed sender.");
            }
        }
        return sender;
    }

    private void RefillStreams()
    {
        foreach (var socket in sockets.Where(s => s.IsStream && s.Queue.Count > 0))
        {
            var sender = socket.Orphan ?? (PeerOf(socket) is { Entry.State: not UnixDiagSocket.StateListen } peer ? peer.Socket : null);
            if (sender is null)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                    $"sk-queues.img: the {socket.Shown} (id {socket.Entry.Id}) has queued data but no connected peer to have sent it.", session.Images.Directory);
            }
            foreach (var message in socket.Queue)
            {
                Send(sender, message, to: default, socket);
            }
        }
        foreach (var socket in sockets.Where(s => s.Orphan is not null))
        {
            socket.Orphan!.Dispose(); // the kernel now marks our end as shut down both ways, as it was
            socket.Orphan = null;
        }
    }

    private void Send(FileDescriptor sender, ImageEntry message, ReadOnlySpan<byte> to, Restored receiver)
    {
        // The sender's buffer limits what may wait unread: make room for everything, the saved size comes back in Finish.
        if (unlimited.Add(sender))
        {
            SocketOption.Set(sender, LibC.SOL_SOCKET, LibC.SO_SNDBUFFORCE, int.MaxValue / 2);
        }
        var data = message.Payload ?? Array.Empty<byte>();
        var rights = Rights(message, receiver);
        long done = 0;
        do
        {
            // The descriptors go with the first bytes, where they were.
            long sent = SocketMessage.TrySend(sender, data.AsSpan((int)done), to, done == 0 ? rights : default);
            if (sent < 0 || (sent < data.Length - done && !receiver.IsStream))
            {
                throw new CheckpointException(CheckpointErrorKind.RestoreFailed,
                    $"The queued data of the {receiver.Shown} (id {receiver.Entry.Id}) cannot be put back: {(sent < 0 ? Errno.Describe((int)-sent) : $"{sent} of {data.Length} bytes sent")}.", receiver.Shown);
            }
            done += sent;
        }
        while (done < data.Length);
    }

    private void Finish()
    {
        foreach (var socket in sockets)
        {
            var entry = socket.Entry;
            if (entry.HasShutdown && entry.Shutdown != SkShutdown.None)
            {
                Native.Interop.Socket.Shutdown(socket.Socket!, (int)entry.Shutdown - 1); // READ, WRITE, BOTH: SHUT_RD, SHUT_WR, SHUT_RDWR
            }
            SocketOptions.Restore(socket.Socket!, entry.Opts);
        }
        foreach (var socket in sockets.Where(s => s.Entry.Deleted && s.BoundFile is not null))
        {
            UnixSocketFile.RemoveDeleted(socket.Entry, socket.BoundFile!.Value);
        }
    }
}
