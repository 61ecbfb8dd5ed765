using CriuPS.Engine.Errors;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Resources.Process;
using CriuPS.Engine.Resources.Sockets;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Dump;

/// <summary>
/// Looks at a process from /proc before anything is frozen, and refuses with every problem at once when it
/// holds something CriuPS cannot save: the process is never touched for a dump that cannot succeed.
/// </summary>
internal static class Preflight
{
    public static void CheckTarget(int pid, int? caller)
    {
        if (pid == Environment.ProcessId || pid == caller)
        {
            throw new CheckpointException(CheckpointErrorKind.SelfCheckpoint, $"Process {pid} is this PowerShell session itself; it cannot checkpoint itself.", pid,
                "Run Checkpoint-Process from another session.");
        }
        ProcStat stat;
        try
        {
            stat = ProcStat.Read(pid);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            throw new CheckpointException(CheckpointErrorKind.ProcessNotFound, $"There is no process with id {pid}.", pid);
        }
        if (stat.IsKernelThread)
        {
            throw new CheckpointException(CheckpointErrorKind.KernelThread, $"Process {pid} ({stat.Comm}) is a kernel thread; it has no user state to save.", pid);
        }
        if (stat.State is 'Z' or 'X')
        {
            throw new CheckpointException(CheckpointErrorKind.NotTraceable, $"Process {pid} ({stat.Comm}) has exited (it is a zombie).", pid);
        }
    }

    /// <summary>Checks the whole tree under <paramref name="root"/>; returns it (parents first) when it can be saved.</summary>
    public static List<ProcessTree.Member> CheckTree(int root, DumpOptions options)
    {
        var session = SessionPrivileges.Current();
        if (!session.CanCheckpointRestore)
        {
            // CAP_SYS_PTRACE is no condition for one's own processes, but what CRIU's unprivileged mode is given as well.
            bool ptrace = session.Has(Capability.SysPtrace);
            throw MissingPrivilege.Error(
                $"Process {root} cannot be checkpointed by this session; nothing was frozen: a checkpoint reads the files a process maps through /proc/PID/map_files, "
                + $"which needs CAP_CHECKPOINT_RESTORE (or CAP_SYS_ADMIN), and {MissingPrivilege.DescribeSession(session)}"
                + (ptrace ? "." : "; CAP_SYS_PTRACE, which it lacks too, lets it trace processes that hold capabilities."),
                root, ptrace ? [Capability.CheckpointRestore] : [Capability.CheckpointRestore, Capability.SysPtrace]);
        }
        if (options.TcpEstablished && !Native.Interop.Nftables.IsAvailable)
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"{InetSockets.TcpEstablishedSwitch} locks the network with nftables while connections are saved, and {Native.Interop.Nftables.Library} is not installed; nothing was frozen.",
                root, "Install the Debian package libnftables1 (apt-get install libnftables1), then try again.");
        }
        const int attempts = 20;
        for (int attempt = 1; ; attempt++)
        {
            var members = ProcessTree.Discover(root);
            try
            {
                CheckMembers(root, members, options);
                return members;
            }
            catch (Exception e) when (e is IOException or NativeException && attempt < attempts && members.Skip(1).Any(m => !ProcessTree.IsAlive(m.Pid)))
            {
                // A process of the tree exited while we looked at it (a shell's short-lived command): look again.
            }
        }
    }

    private static void CheckMembers(int root, List<ProcessTree.Member> members, DumpOptions options)
    {
        var problems = new List<string>();
        string Prefix(int pid) => pid == root ? "" : $"process {pid}: ";
        var live = members.Where(m => !m.IsZombie).Select(m => m.Pid).ToList();
        // First what this session may not do: the checks below read /proc files that another user's process keeps to itself.
        var session = SessionPrivileges.Current();
        var obstacles = live.SelectMany(pid => TraceAccess.Obstacles(pid, session).Select(o => (pid, o))).ToList();
        if (obstacles.Count > 0)
        {
            throw TraceAccess.Refusal(root, obstacles, session);
        }
        // /proc/locks, for the file locks' check at the end: its first read in a while waits for an RCU grace period
        // (see MappedFileLocks.ReadAtFreeze), which passes while the rest is read.
        var locks = Task.Run(LockInfo.ReadAll);
        // Each descriptor is probed once (its link and status), for every check below: a tree of 32 processes that
        // inherited 67 descriptors each has over 2,000 of them, read on every core.
        var probed = OnEveryCore.Read(live, pid => (DescriptorProbe.All(pid), PreflightAreas.Read(pid)));
        var descriptors = new List<DescriptorProbe>();
        var areas = new Dictionary<int, List<VmaInfo>>();
        for (int i = 0; i < live.Count; i++)
        {
            int pid = live[i];
            var (own, ownAreas) = probed[i];
            descriptors.AddRange(own);
            areas[pid] = ownAreas;
            problems.AddRange(ResourceProblems(pid, own, ownAreas, options).Select(p => Prefix(pid) + p));
            problems.AddRange(ProcessNamespaces.Problems(pid, root).Select(p => Prefix(pid) + p));
        }
        using (var unixSockets = UnixSocketTopology.Of(descriptors))
        {
            problems.AddRange(unixSockets.Problems().Select(p => Prefix(p.Pid) + p.Problem));
        }
        problems.AddRange(EpollInstances.Problems(descriptors).Select(p => Prefix(p.Pid) + p.Problem));
        problems.AddRange(Pidfds.Problems(members.Select(m => m.Pid).ToHashSet(), descriptors).Select(p => Prefix(p.Pid) + p.Problem));
        problems.AddRange(TerminalTopology.Of(descriptors, live).ShellJobProblems(descriptors, options.ShellJob).Select(p => Prefix(p.Pid) + p.Problem));
        problems.AddRange(FileLocks.Problems(live, descriptors, areas, locks.GetAwaiter().GetResult()));
        problems.AddRange(ProcessTree.LayoutProblems(members, options.ShellJob));
        if (problems.Count > 0)
        {
            bool Needs(string problem, string parameter) => problem.Contains(parameter, StringComparison.Ordinal);
            var kind = problems.All(p => Needs(p, "-ShellJob")) ? CheckpointErrorKind.ShellJobRequired
                : problems.All(p => Needs(p, InetSockets.TcpEstablishedSwitch)) ? CheckpointErrorKind.TcpEstablishedRequired
                : CheckpointErrorKind.Unsupported;
            var actions = new List<string>();
            if (problems.Any(p => Needs(p, "-ShellJob")))
            {
                actions.Add("Use -ShellJob for processes attached to your terminal.");
            }
            if (problems.Any(p => Needs(p, InetSockets.TcpEstablishedSwitch)))
            {
                actions.Add($"Use {InetSockets.TcpEstablishedSwitch} to save established TCP connections (and again to restore them).");
            }
            if (problems.Any(p => Needs(p, TcpPendingConnections.SkipInFlightSwitch)))
            {
                actions.Add($"Use {TcpPendingConnections.SkipInFlightSwitch} to save TCP listeners without the connections they have not accepted yet.");
            }
            throw new CheckpointException(
                kind,
                $"Process {root} ({ProcStat.Read(root).Comm}) cannot be checkpointed; nothing was frozen:{Environment.NewLine} - {string.Join(Environment.NewLine + " - ", problems)}",
                root,
                actions.Count > 0 ? string.Join(" ", actions) : null);
        }
    }

    private static IEnumerable<string> ResourceProblems(int pid, List<DescriptorProbe> descriptors, List<VmaInfo> areas, DumpOptions options)
    {
        var status = ProcStatus.Read(pid);
        if (status.TracerPid != 0)
        {
            throw new CheckpointException(CheckpointErrorKind.NotTraceable, $"Process {pid} is already traced by process {status.TracerPid} (a debugger?).", pid,
                "Detach the debugger first.");
        }
        // Each thread has its own mode: one thread alone may have entered strict mode, which forbids every call CriuPS
        // injects unless seccomp is suspended for its tracer (PTRACE_O_SUSPEND_SECCOMP, CAP_SYS_ADMIN only).
        bool suspends = SessionPrivileges.Current().Has(Capability.SysAdmin);
        foreach (int tid in ProcFiles.ThreadIds(pid).Where(tid => !suspends && (tid == pid ? status : ProcStatus.ReadThread(pid, tid)).SeccompMode == (int)Seccomp.ModeStrict))
        {
            yield return $"{(tid == pid ? "" : $"thread {tid}: ")}strict seccomp mode: every call CriuPS injects would kill it unless seccomp is suspended while CriuPS works in it (PTRACE_O_SUSPEND_SECCOMP), which needs CAP_SYS_ADMIN";
        }
        foreach (var vma in areas)
        {
            var problem = AddressSpace.Unsupported(pid, vma, options);
            if (problem is not null)
            {
                yield return problem;
            }
        }
        foreach (var descriptor in descriptors)
        {
            if (FileDescriptors.Problem(descriptor, options) is { } problem && !ClosedSince(descriptor))
            {
                yield return problem;
            }
        }
    }

    // The process runs during the pre-flight check: a descriptor probed a moment ago may be closed by now, and what
    // was behind it gone (a socket leaves sock_diag once its last descriptor is closed), which is no problem of the
    // dump. The file goes only after the descriptor, so a descriptor still there with the same file is a problem.
    private static bool ClosedSince(DescriptorProbe probe) =>
        DescriptorProbe.Of(probe.Pid, probe.Fd) is not { } now || now.Status.Device != probe.Status.Device || now.Status.Inode != probe.Status.Inode;
}
