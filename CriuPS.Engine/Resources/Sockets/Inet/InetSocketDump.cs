using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Resources.Files;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// What a dump keeps about IPv4/IPv6 sockets while the tree is frozen: the network lock over the tree's TCP
/// connections, the connections put in repair mode (our own descriptors of them), and what sock_diag reported in
/// each network namespace. A dump that ends with the processes killed leaves the lock for the restore to lift; one
/// that fails, or lets the processes go on, lifts it and takes the connections out of repair mode, nothing lost; one
/// that dies leaves neither (the kernel lifts a lock owned by the session, the processes undo repair mode).
/// </summary>
internal sealed class InetSocketDump
{
    private readonly Dictionary<ulong, Dictionary<uint, InetDiagSocket>> diagByNamespace = new();
    private readonly List<(FileDescriptor Socket, bool ReuseAddress, string Shown)> repaired = new();

    public NetworkLock? Lock { get; private set; }

    /// <summary>
    /// Locks every TCP connection the processes hold (the tree is frozen: none can appear but by the kernel finishing
    /// a connect). The lock is owned by this session, and each process's leader, if we die, takes every connection out
    /// of repair mode (with its SO_REUSEADDR back) on its way back to itself: then nothing of the dump is left.
    /// </summary>
    public void LockConnections(string runId, IReadOnlyList<DumpedProcess> processes, EngineLog log)
    {
        var connections = new List<LockedConnection>();
        var seen = new HashSet<ulong>();
        try
        {
            foreach (var process in processes)
            {
                var undo = new List<RemoteCall>();
                using var pidfd = Pidfd.Open(process.Pid);
                foreach (int fd in ProcFiles.FileDescriptors(process.Pid))
                {
                    if (DescriptorProbe.SocketInode(process.Pid, fd) is not ulong inode)
                    {
                        continue;
                    }
                    using var copy = Pidfd.GetFd(pidfd, fd);
                    if (!InetSockets.IsInet(copy) || InetSocketInfo.Of(copy) is not { IsConnection: true } info)
                    {
                        continue;
                    }
                    if (seen.Add(inode))
                    {
                        connections.Add(new LockedConnection(NetworkNamespace.OfSocket(copy), info.Local, info.Remote!));
                    }
                    undo.AddRange(TcpConnection.ResumeCalls(fd, SocketOption.Get(copy, LibC.SOL_SOCKET, LibC.SO_REUSEADDR) != 0, process.Injection.Scratch));
                }
                if (undo.Count > 0 && process.Frozen.Parked.TryGetValue(process.Pid, out var leader))
                {
                    leader.DoOnTheWayBack(process.Injection.Scratch, undo);
                }
            }
            if (connections.Count > 0)
            {
                Lock = NetworkLock.Engage(runId, connections, CheckpointErrorKind.DumpFailed, ownedBySession: true);
                log.Detail($"network locked for {connections.Count} TCP connection(s) with nftables table {Lock.Table}: {string.Join(", ", connections)}");
            }
        }
        finally
        {
            foreach (var connection in connections)
            {
                connection.Namespace.Dispose();
            }
        }
    }

    /// <summary>What sock_diag reports for a socket of <paramref name="ns"/> (null for one only bound, or unbound); asked once per namespace.</summary>
    public InetDiagSocket? Diag(NetworkNamespace ns, uint inode)
    {
        if (!diagByNamespace.TryGetValue(ns.Inode, out var sockets))
        {
            using (ns.Enter())
            {
                sockets = InetDiag.All();
            }
            diagByNamespace[ns.Inode] = sockets;
        }
        return sockets.GetValueOrDefault(inode);
    }

    /// <summary>Keeps a descriptor of a connection put in repair mode, to take it out again if the processes go on.</summary>
    public void Repaired(FileDescriptor socket, bool reuseAddress, string shown) =>
        repaired.Add((new FileDescriptor(Fcntl.Call(socket, Fcntl.F_DUPFD_CLOEXEC)), reuseAddress, shown));

    /// <summary>
    /// For processes that go on (a failed dump, -LeaveRunning): the lock is lifted and every connection leaves repair
    /// mode, which sends a window probe so that both ends carry on at once. Failures are logged; the rest still happens.
    /// </summary>
    public void Resume(EngineLog log)
    {
        try
        {
            Lock?.Release();
        }
        catch (NftablesException e)
        {
            log.Error($"removing the network lock {Lock!.Table}: {e.Message}");
        }
        Lock = null;
        foreach (var (socket, reuseAddress, shown) in repaired)
        {
            try
            {
                TcpConnection.Resume(socket, reuseAddress);
            }
            catch (NativeException e)
            {
                log.Error($"taking the {shown} out of repair mode: {e.Message}");
            }
        }
        Forget();
    }

    /// <summary>
    /// For killed processes: their connections went away silently, in repair mode; the lock is made to outlive this
    /// session, for the restore to lift.
    /// </summary>
    public void KeepLockForRestore(EngineLog log)
    {
        try
        {
            Lock?.Persist();
        }
        catch (NftablesException e)
        {
            log.Error($"keeping the network lock {Lock!.Table} for the restore: {e.Message}");
        }
        Forget();
    }

    /// <summary>
    /// For processes held stopped by a move and killed once their copy runs elsewhere: their connections close
    /// silently, still in repair mode (no reset, no FIN: the peer's packets now go to the copy), then the lock goes.
    /// </summary>
    public void Drop(EngineLog log)
    {
        Forget();
        try
        {
            Lock?.Release();
        }
        catch (NftablesException e)
        {
            log.Error($"removing the network lock {Lock!.Table}: {e.Message}");
        }
        Lock = null;
    }

    private void Forget()
    {
        foreach (var (socket, _, _) in repaired)
        {
            socket.Dispose();
        }
        repaired.Clear();
    }
}
