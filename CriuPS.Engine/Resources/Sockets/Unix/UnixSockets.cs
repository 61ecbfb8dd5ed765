using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using Google.Protobuf;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// Unix domain sockets (unix_sk_entry in files.img, queued data in sk-queues.img), as CRIU saves them: stream,
/// datagram and seqpacket sockets, named or not, listening, connected within the tree (socketpairs, accepted
/// connections, connections still waiting to be accepted), shut down, with their options and every queued byte,
/// descriptors in flight included (<see cref="UnixInFlight"/>). What /proc does not show comes from sock_diag. Restore rebuilds them all at once in the engine
/// (<see cref="UnixSocketRestore"/>), before any process takes its descriptors.
/// </summary>
internal sealed class UnixSockets : FileKind
{
    public override FdTypes Type => FdTypes.Unixsk;

    public override bool Handles(DescriptorProbe probe) =>
        probe.Status.Type == FileStatus.Socket && UnixDiag.Find((uint)probe.Status.Inode) is not null;

    public override string? Problem(DescriptorProbe probe, DumpOptions options)
    {
        FdInfo info;
        try
        {
            info = FdInfo.Read(probe.Pid, probe.Fd);
        }
        catch (IOException)
        {
            return null; // closed meanwhile
        }
        if (UnixDiag.Find((uint)probe.Status.Inode) is not { } socket)
        {
            return null; // closed meanwhile
        }
        string what = $"fd {probe.Fd}: {UnixSocketName.Describe((uint)socket.Type, socket.Name)}";
        if (int.TryParse(info.Get("scm_fds"), out int inFlight) && inFlight > 0 && UnixInFlight.Problem(probe, socket, options) is { } problem)
        {
            return $"{what} {problem}";
        }
        return UnixQueuedCredentials.Problem(probe, socket) is { } credentials ? $"{what} {credentials}" : null;
    }

    public override FileEntry Dump(DescriptorDump dump)
    {
        var session = dump.Session;
        var topology = session.UnixSockets ??= FrozenTopology(session);
        uint inode = (uint)dump.Probe.Status.Inode;
        if (!topology.TryGet(inode, out var socket))
        {
            throw new CheckpointException(CheckpointErrorKind.DumpFailed,
                $"Process {dump.Probe.Pid}: fd {dump.Probe.Fd} (socket:[{inode}]) is a unix socket that sock_diag did not list.", dump.Probe.Pid);
        }
        string describe = $"Process {dump.Probe.Pid}: fd {dump.Probe.Fd}: {UnixSocketName.Describe((uint)socket.Type, socket.Name)}";
        var entry = new UnixSkEntry
        {
            Id = dump.Id,
            Ino = inode,
            Type = (uint)socket.Type,
            State = (uint)socket.State,
            Flags = dump.Flags,
            Uflags = 0,
            // For a listener, its backlog; for others CRIU stores the memory queued for the peer the same way.
            Backlog = socket.SendQueue,
            Peer = socket.Peer,
            Fown = dump.Owner,
            Opts = SocketOptions.Dump(dump.Copy, SocketOptions.UnixFamily),
            Name = ByteString.CopyFrom(socket.Name),
            NsId = dump.Process.Ids.NetNsId,
        };
        if (socket.Shutdown != 0)
        {
            entry.Shutdown = (SkShutdown)socket.Shutdown;
        }
        // A connection not accepted yet has no peer to name (its other end is not a file yet): name the listener,
        // as CRIU does, and its place in the queue.
        if (socket.Peer == 0 && topology.PendingOn(inode) is var (listener, position))
        {
            entry.Peer = listener.Inode;
            entry.CriupsBacklogPosition = (uint)position;
        }
        UnixSocketFile.Dump(dump.Copy, entry, describe);
        // Only a datagram socket, or a connected one, has a queue to read (recvmsg on others fails).
        if (socket.Type == LibC.SOCK_DGRAM || socket.State == UnixDiagSocket.StateEstablished)
        {
            var queue = UnixSocketQueue.Dump(dump.Copy, dump.Id, socket, describe, copy => topology.InFlight.Save(session, dump.Process, copy, describe));
            foreach (var (packet, data) in queue)
            {
                session.AddImageEntry(ImageTypes.SkQueues, null, packet, data);
            }
            if (queue.Count > 0)
            {
                session.Log.Detail($"{describe}: {queue.Count} queued message(s), {queue.Sum(q => q.Data.Length)} bytes");
            }
        }
        return new FileEntry { Type = FdTypes.Unixsk, Id = dump.Id, Usk = entry };
    }

    /// <summary>
    /// The entries of files.img in an order CRIU's restore can follow. It looks for a socket's peer among the entries
    /// read before it, and later only from a peer that names it back; so a socket whose peer does not name it (a
    /// datagram socket connected to a bound one, a connection waiting on a listener) must come after that peer, as
    /// CRIU's dump writes them. The entries keep their order otherwise.
    /// </summary>
    public static IReadOnlyList<FileEntry> PeersFirst(IReadOnlyList<FileEntry> entries)
    {
        var byInode = new Dictionary<uint, FileEntry>();
        foreach (var entry in entries.Where(e => e.Usk is not null))
        {
            byInode.TryAdd(entry.Usk.Ino, entry);
        }
        var placed = new HashSet<FileEntry>(ReferenceEqualityComparer.Instance);
        var order = new List<FileEntry>(entries.Count);
        foreach (var entry in entries)
        {
            Place(entry);
        }
        return order;

        void Place(FileEntry entry)
        {
            // Marked before its peer is placed, so that a ring of one-way connections ends.
            if (!placed.Add(entry))
            {
                return;
            }
            if (entry.Usk is { Peer: not 0 } socket && byInode.TryGetValue(socket.Peer, out var peer) && peer.Usk.Peer != socket.Ino)
            {
                Place(peer);
            }
            order.Add(entry);
        }
    }

    // The tree is frozen now: look again at who is connected to whom, in case something changed since the pre-flight check.
    private static UnixSocketTopology FrozenTopology(DumpSession session)
    {
        int root = session.Processes[0].Pid;
        var topology = UnixSocketTopology.Of(session.Processes.Select(p => p.Pid));
        var problems = topology.Problems().Select(p => (p.Pid == root ? "" : $"process {p.Pid}: ") + p.Problem).ToList();
        if (problems.Count > 0)
        {
            topology.Dispose();
            throw new CheckpointException(CheckpointErrorKind.Unsupported, $"Process {root} cannot be checkpointed: {string.Join("; ", problems)}.", root);
        }
        return topology;
    }

    public override FileDescriptor Open(RestoreSession session, FileEntry file)
    {
        session.UnixSockets ??= UnixSocketRestore.Build(session);
        return session.UnixSockets.For(file.Id);
    }

    public override SavedDescription Saved(ImageSet images, FileEntry file) => new(file.Usk.Flags, file.Usk.Fown);
}
