using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Files;
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
    public int Pid => (int)Pstree.Pid;
}

/// <summary>
/// Recreates the process tree before any process gets its own state: the root is forked from the host, every
/// other process from its restored parent (clone3 with set_tid), in an order that lets each join its saved session
/// and group (a session is inherited at fork, so children that stay in their parent's old session are forked
/// before the parent starts a new one). Zombies then exit with their saved status, for their parents to collect.
/// </summary>
internal static class TreeBuilder
{

    public static List<ProcessShell> Create(RestoreSession session, RestoreHost host, ByteCount scratchSize, bool childOfCaller, Action<Tracee> created)
    {
        var images = session.Images;
        var everyLayout = images.Processes.SelectMany(p => p.Mm.Vmas).ToList();
        var root = images.Tree[0];
        var (rootTask, scratch) = host.ForkChild((int)root.Pid, everyLayout, scratchSize, childOfCaller);
        created(rootTask);
        var shells = new List<ProcessShell>();
        var builder = new Builder(session, scratch, shells, created);
        builder.Adopt(root, rootTask);
        builder.CreateSubtree(root);
        builder.JoinGroups();
        ControllingTerminals.SetForegroundGroups(session, shells);
        builder.EndZombies();
        return shells;
    }

    private sealed class Builder
    {
        private readonly RestoreSession session;
        private readonly AddressRange scratch;
        private readonly List<ProcessShell> shells;
        private readonly Action<Tracee> created;
        private readonly Dictionary<int, PstreeEntry> byPid;
        private readonly HashSet<int> zombies;

        public Builder(RestoreSession session, AddressRange scratch, List<ProcessShell> shells, Action<Tracee> created)
        {
            this.session = session;
            this.scratch = scratch;
            this.shells = shells;
            this.created = created;
            byPid = session.Images.Tree.ToDictionary(p => (int)p.Pid);
            zombies = session.Images.Zombies.Select(z => z.Pid).ToHashSet();
        }

        private ProcessShell Shell(int pid) => shells.First(s => s.Pid == pid);

        public void Adopt(PstreeEntry entry, Tracee task)
        {
            int pid = (int)entry.Pid;
            Native.Interop.Ptrace.SetSigMask(pid, ulong.MaxValue);
            var memory = ProcessMemory.Open(pid);
            var shell = new ProcessShell(entry, task, memory, Injection.Adopt(task, memory, scratch), zombies.Contains(pid));
            shells.Add(shell);
            // A forked shell inherits the host's rseq registration, which must go before the host's memory does.
            Threads.ThreadState.UnregisterInheritedRseq(task, shell.Injection.Caller);
        }

        /// <summary>The session a process must end in: its own, one led by a process of the tree, or the root's (a shell job's).</summary>
        private int TargetSession(PstreeEntry p) => byPid.ContainsKey((int)p.Sid) ? (int)p.Sid : ProcStat.Read((int)session.Images.Tree[0].Pid).Session;

        private int TargetGroup(PstreeEntry p) => byPid.ContainsKey((int)p.Pgid) ? (int)p.Pgid : ProcStat.Read((int)session.Images.Tree[0].Pid).ProcessGroup;

        public void CreateSubtree(PstreeEntry parent)
        {
            int pid = (int)parent.Pid;
            var shell = Shell(pid);
            var children = session.Images.Tree.Where(c => c.Ppid == parent.Pid && c.Pid != parent.Pid).ToList();
            int currentSession = ProcStat.Read(pid).Session;
            bool newSession = parent.Sid == parent.Pid && currentSession != pid;

            // Children that stay in the session the parent is about to leave are forked first.
            var early = newSession ? children.Where(c => TargetSession(c) == currentSession).ToList() : new List<PstreeEntry>();
            foreach (var child in early)
            {
                Fork(shell, child);
            }
            if (newSession)
            {
                shell.Injection.Caller.Checked("setsid", SyscallNumber.Setsid);
                // Before its children are forked: they inherit the terminal.
                ControllingTerminals.Acquire(session, shell);
            }
            if (parent.Pgid == parent.Pid && ProcStat.Read(pid).ProcessGroup != pid)
            {
                shell.Injection.Caller.Checked("setpgid", SyscallNumber.Setpgid, 0, 0);
            }
            foreach (var child in children.Except(early))
            {
                Fork(shell, child);
            }
        }

        private void Fork(ProcessShell parent, PstreeEntry child)
        {
            ulong flags = 0;
            var parentImages = session.Images.Processes.FirstOrDefault(p => p.Pid == parent.Pid);
            var childImages = session.Images.Processes.FirstOrDefault(p => p.Pid == (int)child.Pid);
            if (parentImages is not null && childImages is not null)
            {
                // Processes that shared a descriptor table or fs information (CLONE_FILES, CLONE_FS) share them again.
                flags |= childImages.Ids.FilesId == parentImages.Ids.FilesId ? Clone3.CloneFiles : 0;
                flags |= childImages.Ids.FsId == parentImages.Ids.FsId ? Clone3.CloneFs : 0;
            }
            var task = Clone3.Create(parent.Injection.Caller, parent.Injection.Scratch, (int)child.Pid, flags, Native.Interop.Signals.SIGCHLD);
            created(task);
            Adopt(child, task);
            CreateSubtree(child);
        }

        /// <summary>Now that every group leader exists, moves each process into its group.</summary>
        public void JoinGroups()
        {
            foreach (var shell in shells)
            {
                int group = TargetGroup(shell.Pstree);
                if (ProcStat.Read(shell.Pid).ProcessGroup != group)
                {
                    shell.Injection.Caller.Checked($"setpgid({group})", SyscallNumber.Setpgid, 0, (ulong)group);
                }
            }
            foreach (var shell in shells)
            {
                var stat = ProcStat.Read(shell.Pid);
                if (stat.Session != TargetSession(shell.Pstree) || stat.ProcessGroup != TargetGroup(shell.Pstree))
                {
                    throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                        $"Process {shell.Pid} could not be put back in session {shell.Pstree.Sid} and group {shell.Pstree.Pgid} (it is in {stat.Session} and {stat.ProcessGroup}).",
                        shell.Pid);
                }
            }
        }

        /// <summary>Lets each zombie exit as it did, and collects the tracer's notice, leaving the zombie to its parent.</summary>
        public void EndZombies()
        {
            foreach (var zombie in session.Images.Zombies)
            {
                var shell = Shell(zombie.Pid);
                int status = zombie.ExitStatus;
                shell.Injection.Scratch.Reset();
                var name = shell.Injection.Scratch.PutString(zombie.Core.Tc.Comm);
                shell.Injection.Caller.Checked("prctl(PR_SET_NAME)", SyscallNumber.Prctl, 15, name.Value);
                int signal = status & 0x7f;
                try
                {
                    if (signal == 0)
                    {
                        shell.Injection.Caller.Call(SyscallNumber.ExitGroup, (ulong)((status >> 8) & 0xff));
                    }
                    else
                    {
                        Prlimit.TrySet(zombie.Pid, 4 /* RLIMIT_CORE */, new ResourceLimit());
                        Native.Interop.Ptrace.SetSigMask(zombie.Pid, 0);
                        LibC.kill(zombie.Pid, signal);
                        int deliver = 0;
                        while (true)
                        {
                            shell.Leader.Continue(deliver);
                            var stop = shell.Leader.WaitStop();
                            deliver = stop.Event == PtraceEvent.None ? stop.StopSignal : 0;
                        }
                    }
                    throw new InvalidOperationException($"zombie {zombie.Pid} did not exit");
                }
                catch (TraceeGoneException)
                {
                    shell.Memory.Dispose();
                }
            }
        }
    }
}
