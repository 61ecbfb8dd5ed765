using CriuPS.Engine.Resources.Files;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// Who is connected to whom: the unix sockets a process tree holds, and every unix socket of the network namespace
/// as sock_diag reports it (peers, listeners' pending connections). Sockets in flight in the queues of the tree's
/// sockets belong to the tree. A connection can be saved only when both its ends are in the tree;
/// <see cref="Problems"/> says which cannot, for the pre-flight check and again once the tree is frozen.
/// </summary>
internal sealed class UnixSocketTopology : IDisposable
{
    private readonly Dictionary<uint, UnixDiagSocket> all;
    private readonly Dictionary<uint, (int Pid, int Fd)> held;
    private readonly Dictionary<uint, uint> carriedBy = new();
    private readonly Dictionary<uint, (UnixDiagSocket Listener, int Position)> pending = new();

    private UnixSocketTopology(Dictionary<uint, UnixDiagSocket> all, Dictionary<uint, (int Pid, int Fd)> held)
    {
        this.all = all;
        this.held = held;
        FindInFlight();
        foreach (var listener in all.Values.Where(s => s.IsListening))
        {
            for (int i = 0; i < listener.PendingConnections.Length; i++)
            {
                pending[listener.PendingConnections[i]] = (listener, i);
            }
        }
    }

    /// <summary>The unix sockets <paramref name="pids"/> hold (each with its first holder, in the order given), and all the others.</summary>
    public static UnixSocketTopology Of(IEnumerable<int> pids) =>
        Of(pids.SelectMany(pid => ProcFiles.FileDescriptors(pid).Select(fd => (pid, fd, DescriptorProbe.SocketInode(pid, fd)))));

    /// <summary>The unix sockets among descriptors already probed (each with its first holder, in the order given), and all the others.</summary>
    public static UnixSocketTopology Of(IEnumerable<DescriptorProbe> descriptors) =>
        Of(descriptors.Select(d => (d.Pid, d.Fd, d.SocketInode())));

    private static UnixSocketTopology Of(IEnumerable<(int Pid, int Fd, ulong? SocketInode)> descriptors)
    {
        var sockets = new Dictionary<uint, (int Pid, int Fd)>();
        foreach (var (pid, fd, socket) in descriptors)
        {
            if (socket is ulong inode)
            {
                sockets.TryAdd((uint)inode, (pid, fd));
            }
        }
        // No socket, no netlink round trip; sockets of other families are other modules' business.
        var all = sockets.Count == 0 ? new Dictionary<uint, UnixDiagSocket>() : UnixDiag.All();
        return new UnixSocketTopology(all, sockets.Where(s => all.ContainsKey(s.Key)).ToDictionary());
    }

    /// <summary>The descriptors in flight in the queues of the tree's sockets, our copies of which stay open as long as this.</summary>
    public UnixInFlight InFlight { get; } = new();

    public void Dispose() => InFlight.Dispose();

    // Sockets in flight in the queues of the tree's sockets (and in theirs, in turn) belong to the tree too: each
    // counts as held by the process and descriptor whose queue carries it.
    private void FindInFlight()
    {
        var carriers = new Queue<(uint Inode, int Pid, int Fd)>(held.Select(h => (h.Key, h.Value.Pid, h.Value.Fd)));
        while (carriers.TryDequeue(out var carrier))
        {
            if (UnixInFlight.Count(carrier.Pid, carrier.Fd) == 0)
            {
                continue;
            }
            foreach (var copy in InFlight.Peek(carrier.Pid, carrier.Fd, all[carrier.Inode]))
            {
                if (copy.SocketInode() is ulong inode && all.ContainsKey((uint)inode) && !held.ContainsKey((uint)inode))
                {
                    var holder = held[carrier.Inode];
                    held[(uint)inode] = holder;
                    carriedBy[(uint)inode] = carrier.Inode;
                    carriers.Enqueue(((uint)inode, copy.Pid, copy.Fd));
                }
            }
        }
    }

    /// <summary>What sock_diag reported for the socket (it exists in this namespace at the time of the snapshot).</summary>
    public UnixDiagSocket this[uint inode] => all[inode];

    public bool TryGet(uint inode, out UnixDiagSocket socket) => all.TryGetValue(inode, out socket!);

    /// <summary>The listener a connection not yet accepted waits on, with its place in the listener's queue.</summary>
    public (UnixDiagSocket Listener, int Position)? PendingOn(uint client) => pending.TryGetValue(client, out var found) ? found : null;

    /// <summary>Every connection of the tree that cannot be saved, with the process and descriptor that hold the socket.</summary>
    public IEnumerable<(int Pid, string Problem)> Problems()
    {
        foreach (var (inode, (pid, fd)) in held)
        {
            var socket = all[inode];
            string what = carriedBy.TryGetValue(inode, out uint carrier)
                ? $"fd {fd}: {UnixSocketName.Describe((uint)all[carrier].Type, all[carrier].Name)} carries in flight a {UnixSocketName.Describe((uint)socket.Type, socket.Name)}"
                : $"fd {fd}: {UnixSocketName.Describe((uint)socket.Type, socket.Name)}";
            foreach (var problem in ProblemsOf(socket))
            {
                yield return (pid, $"{what} {problem}");
            }
        }
    }

    private IEnumerable<string> ProblemsOf(UnixDiagSocket socket)
    {
        if (socket.IsListening)
        {
            foreach (uint client in socket.PendingConnections)
            {
                if (client == 0)
                {
                    yield return "has a connection waiting to be accepted whose client has closed already (what it sent cannot be read back)";
                }
                else if (!held.ContainsKey(client))
                {
                    yield return $"has a connection waiting to be accepted from {Name(client)}, which is outside the checkpointed tree";
                }
            }
        }
        else if (socket.Peer != 0)
        {
            if (!held.ContainsKey(socket.Peer))
            {
                yield return $"connected to {Name(socket.Peer)}, whose other end is outside the checkpointed tree";
            }
            else if (all[socket.Peer].Peer != socket.Inode && all[socket.Peer].Name.Length == 0)
            {
                yield return $"connected to an unnamed socket (socket:[{socket.Peer}]) that is connected elsewhere now; that connection cannot be made again";
            }
        }
        else if (socket.State == UnixDiagSocket.StateEstablished && socket.Type != LibC.SOCK_DGRAM)
        {
            if (PendingOn(socket.Inode) is var (listener, _))
            {
                if (!held.ContainsKey(listener.Inode))
                {
                    yield return $"connecting to {UnixSocketName.Display(listener.Name)}, whose listener (which has not accepted the connection yet) is outside the checkpointed tree";
                }
                else if (socket.SendQueue != 0)
                {
                    yield return $"has sent data on its connection to {UnixSocketName.Display(listener.Name)}, which is not accepted yet (data queued for a connection not yet accepted cannot be read back)";
                }
            }
            else if (socket.Shutdown != UnixDiagSocket.ShutdownBoth)
            {
                yield return "is connected to a socket that no longer exists";
            }
        }
    }

    // A socket as messages name it: its name (for an accepted connection, the listener's), else its inode.
    private string Name(uint inode) =>
        all.TryGetValue(inode, out var socket) && socket.Name.Length > 0 ? UnixSocketName.Display(socket.Name) : $"an unnamed socket (socket:[{inode}])";
}
