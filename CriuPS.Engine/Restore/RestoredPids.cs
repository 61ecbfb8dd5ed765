using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Restore;

/// <summary>
/// The PIDs of a restore as the restored processes see them (the saved ones, which the images name) and as the
/// engine sees them, which /proc, ptrace, kill, prlimit and pidfd_open here need. They are the same but with
/// -NewPidNamespace: then each process has its saved PID inside a namespace of the restore's own, whose init is
/// PID 1, and whatever PID the kernel gave it outside.
/// </summary>
internal sealed class RestoredPids
{
    private readonly Dictionary<int, int> hostByInside = new();
    private readonly Dictionary<int, int> insideByHost = new();

    /// <summary>A restore in the engine's PID namespace: every PID is the saved one.</summary>
    public RestoredPids()
    {
    }

    /// <summary>
    /// A restore with PID namespaces of its own: the tree's top one new, whose init (PID 1 there) the engine sees as
    /// <paramref name="initHostPid"/>, or the engine's (null) with namespaces below it; the processes inherit a pidfd
    /// of the engine at <paramref name="enginePidfd"/>.
    /// </summary>
    public RestoredPids(int? initHostPid, int enginePidfd)
    {
        InitHostPid = initHostPid;
        EnginePidfd = enginePidfd;
        if (initHostPid is int init)
        {
            Add(1, init);
        }
    }

    /// <summary>The init of the restore's PID namespace as the engine sees it; null without one.</summary>
    public int? InitHostPid { get; }

    public bool InNewNamespace => InitHostPid is not null;

    /// <summary>
    /// In a PID namespace the restore makes, the engine has no PID that its processes could name: they inherit a pidfd
    /// of the engine from the tree's root (or the namespace's init), at this number, until the end of the restore.
    /// </summary>
    public int? EnginePidfd { get; }

    /// <summary>Records a task created in the namespace: <paramref name="inside"/> its PID there, <paramref name="host"/> ours.</summary>
    public void Add(int inside, int host)
    {
        if (InNewNamespace)
        {
            hostByInside[inside] = host;
            insideByHost[host] = inside;
        }
    }

    /// <summary>The PID the engine sees for the process whose PID in the restore's namespace is <paramref name="inside"/>.</summary>
    public int Host(int inside) => !InNewNamespace ? inside
        : hostByInside.TryGetValue(inside, out int host) ? host
        : throw new InvalidOperationException($"PID {inside} of the restore's PID namespace has not been created");

    /// <summary>
    /// The PID in the restore's namespace of the process the engine sees as <paramref name="host"/>: 0 for one outside
    /// that namespace, as the kernel says of a session or group whose leader is outside.
    /// </summary>
    public int Inside(int host) => !InNewNamespace ? host : insideByHost.GetValueOrDefault(host);

    /// <summary>Whether a process with PID <paramref name="inside"/> exists where the restored processes live.</summary>
    public bool Exists(int inside) => !InNewNamespace ? ProcFiles.Exists(inside)
        : hostByInside.TryGetValue(inside, out int host) && ProcFiles.Exists(host);

    /// <summary>The session of a restored process, numbered as it sees it.</summary>
    public int SessionOf(int inside) => Inside(ProcStat.Read(Host(inside)).Session);

    /// <summary>The process group of a restored process, numbered as it sees it.</summary>
    public int GroupOf(int inside) => Inside(ProcStat.Read(Host(inside)).ProcessGroup);

    /// <summary>
    /// The call by which a restored process gets a pidfd of the engine (to pull descriptors with pidfd_getfd), at
    /// its lowest free number: pidfd_open of the engine's PID, or a copy of the inherited one (fcntl F_DUPFD_CLOEXEC).
    /// </summary>
    public RemoteCall<int> EnginePidfdCall(int enginePid) => EnginePidfd is int inherited
        ? RemoteCall.DuplicateCloseOnExec(inherited, 0)
        : RemoteCall.PidfdOpen(enginePid);
}
