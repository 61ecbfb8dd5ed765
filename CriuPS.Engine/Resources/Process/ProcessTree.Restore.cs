using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Process;

/// <summary>A process of the tree as first created: a copy of the host, stopped, with our injection area.</summary>
internal sealed record ProcessShell(PstreeEntry Pstree, Tracee Leader, ProcessMemory Memory, Injection Injection, bool IsZombie)
{
    /// <summary>The saved PID, which the process has (in its PID namespace).</summary>
    public int Pid => (int)Pstree.Pid;

    /// <summary>The PID we see it with: the saved one, but in a PID namespace of the restore's own.</summary>
    public int HostPid => Leader.Tid;
}

/// <summary>
/// Recreates the process tree before any process gets its own state: the root is forked from the host, every
/// other process from its restored parent (clone3 with set_tid), in an order that lets each join its saved session
/// and group (a session is inherited at fork, so children that stay in their parent's old session are forked
/// before the parent starts a new one). A process born into a session its parent is not in is forked from a
/// sibling in that session, or from a stand-in for its gone leader, with CLONE_PARENT; a group whose leader is gone
/// is made by a stand-in (<see cref="StandInLeader"/>). Each process gets its private anonymous memory before it
/// forks (<see cref="ForkedMemory"/>), so that its children inherit it copy-on-write as the saved ones had. Zombies
/// then exit with their saved status, for their parents to collect.
/// </summary>
internal static partial class ProcessTree
{
    /// <param name="enginePidfd">
    /// Where the root keeps the pidfd of the engine the tree inherits, when the tree has processes in PID namespaces
    /// the restore makes (a root that was its namespace's init, PID 1, is restored as the init of a new one), where
    /// the engine has no PID (see <see cref="RestoredPids"/>).
    /// </param>
    public static List<ProcessShell> Create(RestoreSession session, RestoreHost host, ByteCount scratchSize, bool childOfCaller, Action<Tracee> created, int enginePidfd)
    {
        var images = session.Images;
        var everyLayout = images.Processes.SelectMany(p => p.Mm.Vmas).ToList();
        var root = images.Tree[0];
        bool rootIsInit = PidLevels.IsNamespaceInit(root, parent: null);
        bool nested = images.Tree.Any(p => p.CriupsNsPid.Count > 0);
        bool handDown = (rootIsInit || nested) && !host.IsNamespaceInit; // criups-init has one already
        var (rootTask, scratch) = host.ForkChild(PidLevels.Process(root), rootIsInit, handDown ? enginePidfd : null, everyLayout, scratchSize, childOfCaller && !host.IsNamespaceInit);
        if (handDown)
        {
            session.Pids = new RestoredPids(rootIsInit ? rootTask.Tid : null, enginePidfd);
        }
        created(rootTask);
        var shells = new List<ProcessShell>();
        var builder = new Builder(session, scratch, shells, created);
        builder.Adopt(root, rootTask);
        builder.CreateSubtree(root);
        builder.JoinGroups();
        ControllingTerminals.SetForegroundGroups(session, shells);
        builder.EndZombies();
        builder.DrainChildSignals();
        return shells;
    }

    /// <summary>
    /// The PIDs that stand-ins will take on restore: sessions and groups of the tree whose leader is not in it (nor
    /// the root's own, which a shell job joins), for the restore to check that they are free.
    /// </summary>
    public static IEnumerable<int> StandInPids(IReadOnlyList<PstreeEntry> tree)
    {
        var pids = tree.Select(p => (int)p.Pid).ToHashSet();
        var root = tree[0];
        return tree.SelectMany(p => new[] { (p.Sid, root.Sid), (p.Pgid, root.Pgid) })
            .Where(ids => ids.Item1 != ids.Item2 && !pids.Contains((int)ids.Item1))
            .Select(ids => (int)ids.Item1)
            .Distinct();
    }

    private sealed class Builder
    {
        private readonly RestoreSession session;
        private readonly AddressRange scratch;
        private readonly List<ProcessShell> shells;
        private readonly Action<Tracee> created;
        private readonly Dictionary<int, PstreeEntry> byPid;
        private readonly HashSet<int> zombies;
        private readonly PstreeEntry root;
        // Stand-ins of gone session leaders, alive while their parent's children are forked; by session.
        private readonly Dictionary<int, StandInLeader> sessionStandIns = new();
        private readonly RestoredPids pids;
        // Processes that saw a child of theirs end (a zombie, a stand-in): each got a SIGCHLD the saved one has not.
        private readonly HashSet<int> notifiedParents = new();
        // The process of the tree each process was forked from (its parent, or a sibling in its session), whose
        // memory it inherits; none for the root and for those a stand-in forked.
        private readonly Dictionary<int, ProcessShell> forkers = new();

        public Builder(RestoreSession session, AddressRange scratch, List<ProcessShell> shells, Action<Tracee> created)
        {
            this.session = session;
            this.scratch = scratch;
            this.shells = shells;
            this.created = created;
            byPid = session.Images.Tree.ToDictionary(p => (int)p.Pid);
            zombies = session.Images.Zombies.Select(z => z.Pid).ToHashSet();
            root = session.Images.Tree[0];
            pids = session.Pids;
        }

        private ProcessShell Shell(int pid) => shells.First(s => s.Pid == pid);

        public void Adopt(PstreeEntry entry, Tracee task)
        {
            pids.Add((int)entry.Pid, task.Tid);
            Native.Interop.Ptrace.SetSigMask(task.Tid, ulong.MaxValue);
            var memory = ProcessMemory.Open(task.Tid);
            var shell = new ProcessShell(entry, task, memory, Injection.Adopt(task, memory, scratch), zombies.Contains((int)entry.Pid));
            shells.Add(shell);
            // A forked shell inherits the host's rseq registration, which must go before the host's memory does.
            Threads.ThreadState.UnregisterInheritedRseq(task, shell.Injection.Caller);
        }

        /// <summary>
        /// The session a process must end in: its own or one of the tree's, whether its leader is in the image or
        /// gone (a stand-in makes it again); the root's saved session, when the root did not lead it, is the one the
        /// root joins now (a shell job's).
        /// </summary>
        private int TargetSession(PstreeEntry p) => !byPid.ContainsKey((int)p.Sid) && p.Sid == root.Sid ? pids.SessionOf((int)root.Pid) : (int)p.Sid;

        private int TargetGroup(PstreeEntry p) => !byPid.ContainsKey((int)p.Pgid) && p.Pgid == root.Pgid ? pids.GroupOf((int)root.Pid) : (int)p.Pgid;

        public void CreateSubtree(PstreeEntry parent)
        {
            int pid = (int)parent.Pid;
            var shell = Shell(pid);
            // Before any child is forked: they inherit this memory copy-on-write.
            ForkedMemory.Restore(session, shell, forkers.GetValueOrDefault(pid));
            var children = session.Images.Tree.Where(c => c.Ppid == parent.Pid && c.Pid != parent.Pid).ToList();
            int currentSession = pids.SessionOf(pid);
            bool newSession = parent.Sid == parent.Pid && currentSession != pid;

            // Children that stay in the session the parent is about to leave are forked first.
            var early = newSession ? children.Where(c => TargetSession(c) == currentSession).ToList() : new List<PstreeEntry>();
            foreach (var child in early)
            {
                Fork(shell, child);
            }
            if (newSession)
            {
                shell.Injection.Caller.Checked("setsid", RemoteCall.Setsid());
                // Before its children are forked: they inherit the terminal.
                ControllingTerminals.Acquire(session, shell);
            }
            if (parent.Pgid == parent.Pid && pids.GroupOf(pid) != pid)
            {
                shell.Injection.Caller.Checked("setpgid", RemoteCall.JoinProcessGroup(0));
            }
            // Session leaders before the rest: a sibling born into a leader's session is forked by that leader.
            foreach (var child in children.Except(early).OrderBy(c => c.Sid == c.Pid ? 0 : 1))
            {
                Fork(shell, child);
            }
            foreach (var standIn in sessionStandIns.Values.ToList())
            {
                standIn.End();
                notifiedParents.Add(pid);
            }
            sessionStandIns.Clear();
        }

        // A stand-in's task, created: it has the PID it stands in for, inside.
        private void Created(int inside, Tracee task)
        {
            pids.Add(inside, task.Tid);
            created(task);
        }

        private void Fork(ProcessShell parent, PstreeEntry child)
        {
            int targetSession = TargetSession(child);
            Tracee task;
            // The init of a PID namespace its parent made is born into a new one.
            bool isInit = PidLevels.IsNamespaceInit(child, parent.Pstree);
            ulong newNamespace = isInit ? (uint)LibC.CLONE_NEWPID : 0;
            var levels = PidLevels.Process(child);
            if (targetSession == (int)child.Pid || targetSession == pids.SessionOf(parent.Pid))
            {
                task = Clone3.Create(parent.Injection.Caller, parent.Injection.Scratch, levels, SharingFlags(parent.Pid, child) | newNamespace, Native.Interop.Signals.SIGCHLD);
                forkers[(int)child.Pid] = parent;
            }
            else
            {
                // Born into a session its parent is not in: forked by a process of that session whose parent is the
                // same (CLONE_PARENT makes the child its sibling), which takes the exit signal from it.
                var forker = SessionForker(parent, child, targetSession);
                task = Clone3.Create(forker.Caller, forker.Scratch, levels, SharingFlags(parent.Pid, child) | (uint)LibC.CLONE_PARENT | newNamespace, 0);
                if (shells.FirstOrDefault(s => s.Injection == forker) is { } sibling)
                {
                    forkers[(int)child.Pid] = sibling;
                }
            }
            created(task);
            if (isInit && ParentEntersNamespace(parent, child))
            {
                // As unshare(CLONE_NEWPID) left it: the parent's next children are born into the namespace too.
                ProcessNamespaces.Join(parent.Injection, $"/proc/{task.Tid}/ns/pid", LibC.CLONE_NEWPID, $"the PID namespace of {child.Pid}");
            }
            Adopt(child, task);
            CreateSubtree(child);
        }

        // Whether the parent's children were born into the child's namespace (its pid_for_children) at checkpoint time.
        private bool ParentEntersNamespace(ProcessShell parent, PstreeEntry child)
        {
            var parentIds = session.Images.Processes.FirstOrDefault(p => p.Pid == parent.Pid)?.Ids;
            var childIds = session.Images.Processes.FirstOrDefault(p => p.Pid == (int)child.Pid)?.Ids;
            return parentIds is { HasCriupsPidForChildrenNsId: true } && childIds is not null && parentIds.CriupsPidForChildrenNsId == childIds.PidNsId;
        }

        // The descriptor table and fs information the child shares with its parent (CLONE_FILES, CLONE_FS).
        private ulong SharingFlags(int parentPid, PstreeEntry child)
        {
            var parentImages = session.Images.Processes.FirstOrDefault(p => p.Pid == parentPid);
            var childImages = session.Images.Processes.FirstOrDefault(p => p.Pid == (int)child.Pid);
            if (parentImages is null || childImages is null)
            {
                return 0;
            }
            return (childImages.Ids.FilesId == parentImages.Ids.FilesId ? (uint)LibC.CLONE_FILES : 0)
                | (childImages.Ids.FsId == parentImages.Ids.FsId ? (uint)LibC.CLONE_FS : 0);
        }

        // A child of the parent already in the session (one that shares what the parent shares with the new child),
        // or else the stand-in for the session's gone leader, forked by the parent.
        private Injection SessionForker(ProcessShell parent, PstreeEntry child, int targetSession)
        {
            ulong sharing = SharingFlags(parent.Pid, child);
            var sibling = shells.FirstOrDefault(s => s.Pstree.Ppid == (uint)parent.Pid && s.Pid != parent.Pid
                && (SharingFlags(parent.Pid, s.Pstree) & sharing) == sharing && pids.SessionOf(s.Pid) == targetSession);
            if (sibling is not null)
            {
                return sibling.Injection;
            }
            if (sessionStandIns.TryGetValue(targetSession, out var standIn))
            {
                return standIn.Injection;
            }
            if (byPid.ContainsKey(targetSession) || pids.Exists(targetSession))
            {
                throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                    $"Process {child.Pid} cannot be born into session {targetSession}: no process of that session is a child of its parent {parent.Pid} to fork it, and its leader {targetSession} exists.",
                    (int)child.Pid);
            }
            standIn = StandInLeader.Start(parent, targetSession, sharing, newSession: true, scratch, Created);
            sessionStandIns[targetSession] = standIn;
            return standIn.Injection;
        }

        /// <summary>Now that every group leader exists, moves each process into its group; a stand-in makes a group whose leader is gone.</summary>
        public void JoinGroups()
        {
            foreach (var shell in shells)
            {
                int group = TargetGroup(shell.Pstree);
                if (pids.GroupOf(shell.Pid) == group)
                {
                    continue;
                }
                StandInLeader? standIn = null;
                if (!byPid.ContainsKey(group) && !shells.Any(s => pids.GroupOf(s.Pid) == group))
                {
                    standIn = StandInLeader.Start(shell, group, 0, newSession: false, scratch, Created);
                }
                shell.Injection.Caller.Checked($"setpgid({group})", RemoteCall.JoinProcessGroup(group));
                if (standIn is not null)
                {
                    standIn.End();
                    notifiedParents.Add(shell.Pid);
                }
            }
            foreach (var shell in shells)
            {
                var (sid, pgid) = (pids.SessionOf(shell.Pid), pids.GroupOf(shell.Pid));
                if (sid != TargetSession(shell.Pstree) || pgid != TargetGroup(shell.Pstree))
                {
                    throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                        $"Process {shell.Pid} could not be put back in session {shell.Pstree.Sid} and group {shell.Pstree.Pgid} (it is in {sid} and {pgid}).",
                        shell.Pid);
                }
            }
        }

        /// <summary>Lets each zombie exit as it did, leaving it to its parent.</summary>
        public void EndZombies()
        {
            foreach (var zombie in session.Images.Zombies)
            {
                Zombies.End(Shell(zombie.Pid), zombie);
                notifiedParents.Add((int)zombie.Pstree.Ppid);
            }
        }

        /// <summary>
        /// Takes back the SIGCHLD that the end of a zombie or stand-in queued in its parent (blocked, so queued even
        /// where the default action ignores it): the saved process had taken it already, and its own pending signals
        /// are queued later.
        /// </summary>
        public void DrainChildSignals()
        {
            foreach (var shell in shells.Where(s => notifiedParents.Contains(s.Pid) && !s.IsZombie))
            {
                shell.Injection.Scratch.Reset();
                var set = shell.Injection.Scratch.Put(Native.Interop.Signals.Bit(Native.Interop.Signals.SIGCHLD));
                var noWait = shell.Injection.Scratch.PutArray<long>(new long[2]); // a timespec of zero: do not wait
                while (shell.Injection.Caller.Call(RemoteCall.RtSigtimedwait(set, Native.Memory.Address.Null, noWait)) == Native.Interop.Signals.SIGCHLD)
                {
                }
            }
        }
    }
}
