using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Process;

/// <summary>
/// Who the process is in the process tree (pstree.img: pid, parent, group, session, threads) and which kernel
/// objects it shares (ids-PID.img); on restore, its session and process group. The dump is here, the restore (the
/// tree forked again with its PIDs, sessions and groups) in ProcessTree.Restore.cs.
/// </summary>
internal static partial class ProcessTree
{
    private static readonly string[] Namespaces = { "pid", "net", "ipc", "uts", "mnt", "user", "cgroup", "time" };

    /// <summary>A process of the tree as /proc shows it.</summary>
    public sealed record Member(int Pid, int ParentPid, bool IsZombie);

    /// <summary>The root and every descendant, parents before children (breadth first).</summary>
    public static List<Member> Discover(int root)
    {
        var members = new List<Member> { new(root, ProcStat.Read(root).PPid, IsZombie: false) };
        for (int i = 0; i < members.Count; i++)
        {
            if (members[i].IsZombie)
            {
                continue;
            }
            foreach (int child in Children(members[i].Pid))
            {
                try
                {
                    members.Add(new Member(child, members[i].Pid, ProcStat.Read(child).State == 'Z'));
                }
                catch (IOException)
                {
                    // gone already
                }
            }
        }
        return members;
    }

    /// <summary>Whether the process still runs (it is neither gone nor a zombie).</summary>
    public static bool IsAlive(int pid)
    {
        try
        {
            return ProcStat.Read(pid).State is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>
    /// Whether the process shares its memory with its parent: a vfork child that has not yet exec'd or exited.
    /// </summary>
    public static bool InVfork(Member member) => Kcmp.Compare(member.Pid, member.ParentPid, Kcmp.Vm) == 0;

    // Children hang off the thread that forked them: ask every thread.
    private static IEnumerable<int> Children(int pid)
    {
        var children = new SortedSet<int>();
        IEnumerable<int> threads;
        try
        {
            threads = ProcFiles.ThreadIds(pid).ToList();
        }
        catch (IOException)
        {
            return children; // the process exited since it was listed
        }
        foreach (var tid in threads)
        {
            try
            {
                foreach (var word in ProcFiles.ReadText($"/proc/{pid}/task/{tid}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    children.Add(int.Parse(word, System.Globalization.CultureInfo.InvariantCulture));
                }
            }
            catch (IOException)
            {
                // the thread exited
            }
        }
        return children;
    }

    /// <summary>
    /// What cannot be rebuilt in the tree's session and group layout: a session or group led by a process outside the
    /// tree (but the root's own, a shell job's, joined on restore); a session whose leader is gone (a stand-in makes it
    /// again on restore) entered from more than one parent; processes may share an fd table or fs information, but
    /// not signal handlers or memory (that needs threads). Zombies keep their session and group as well.
    /// </summary>
    public static IEnumerable<string> LayoutProblems(IReadOnlyList<Member> members, bool shellJob)
    {
        var pids = members.Select(m => m.Pid).ToHashSet();
        var root = ProcStat.Read(members[0].Pid);
        if (!shellJob && (root.Session != members[0].Pid || root.ProcessGroup != members[0].Pid))
        {
            yield return $"session {root.Session} and process group {root.ProcessGroup} led by another process (a shell job: use -ShellJob)";
        }
        var stats = members.ToDictionary(m => m.Pid, m => m.Pid == members[0].Pid ? root : ProcStat.Read(m.Pid));
        bool LedOutside(int id, int rootsOwn) => !pids.Contains(id) && id != rootsOwn && ProcFiles.Exists(id);
        foreach (var member in members.Skip(1))
        {
            var stat = stats[member.Pid];
            string what = member.IsZombie ? "zombie" : "process";
            if (LedOutside(stat.Session, root.Session))
            {
                yield return $"{what} {member.Pid} is in session {stat.Session}, whose leader runs outside the tree";
            }
            if (LedOutside(stat.ProcessGroup, root.ProcessGroup))
            {
                yield return $"{what} {member.Pid} is in process group {stat.ProcessGroup}, whose leader runs outside the tree";
            }
            if (member.IsZombie)
            {
                continue;
            }
            // A vfork child shares its parent's memory only until it execs or exits, which freezing the parent
            // waits for (the parent cannot stop before), and the frozen tree is checked for it. A child that shares
            // the signal handlers too was cloned with CLONE_VM | CLONE_SIGHAND (the kernel allows the one only with
            // the other), which no exec of the parent's ends: one address space for two processes.
            if (Kcmp.Compare(member.Pid, member.ParentPid, Kcmp.Sighand) == 0 && Kcmp.Compare(member.Pid, member.ParentPid, Kcmp.Vm) == 0)
            {
                yield return $"process {member.Pid} shares its memory and signal handlers with its parent {member.ParentPid} (cloned with CLONE_VM | CLONE_SIGHAND, not as a thread; only threads may share memory)";
            }
        }
        // A process is born into its parent's session: one whose parent is in another session is forked on restore by a
        // process of its session with the same parent, the stand-in of a gone leader included, which has one parent.
        var leaderless = members.Skip(1)
            .Where(m => stats[m.Pid].Session is var sid && !pids.Contains(sid) && sid != root.Session && stats.GetValueOrDefault(m.ParentPid)?.Session != sid)
            .GroupBy(m => stats[m.Pid].Session);
        foreach (var session in leaderless.Where(g => g.Select(m => m.ParentPid).Distinct().Count() > 1))
        {
            yield return $"session {session.Key}, whose leader has gone, holds children of several processes ({string.Join(", ", session.Select(m => $"{m.Pid} of {m.ParentPid}"))}), which no single stand-in for its leader can fork";
        }
    }

    public static void Dump(DumpedProcess process, DumpSession session, bool isRoot)
    {
        var pstree = process.Pstree;
        pstree.Pid = (uint)process.Pid;
        pstree.Ppid = isRoot ? 0 : (uint)process.Stat.PPid;
        pstree.Pgid = (uint)process.Stat.ProcessGroup;
        pstree.Sid = (uint)process.Stat.Session;
        pstree.Threads.Add(process.Threads.Select(t => (uint)t.Tid));

        var ids = process.Ids;
        ids.VmId = SharedObjectId(session, process.Pid, Kcmp.Vm, "vm");
        ids.FilesId = SharedObjectId(session, process.Pid, Kcmp.Files, "files");
        ids.FsId = SharedObjectId(session, process.Pid, Kcmp.Fs, "fs");
        ids.SighandId = SharedObjectId(session, process.Pid, Kcmp.Sighand, "sighand");
        var ns = Namespaces.ToDictionary(n => n, n => session.ObjectIds.For(ProcFiles.ReadLink($"/proc/{process.Pid}/ns/{n}")));
        ids.PidNsId = ns["pid"];
        ids.NetNsId = ns["net"];
        ids.IpcNsId = ns["ipc"];
        ids.UtsNsId = ns["uts"];
        ids.MntNsId = ns["mnt"];
        ids.UserNsId = ns["user"];
        ids.CgroupNsId = ns["cgroup"];
        ids.TimeNsId = ns["time"];
        TimeNamespaces.Dump(session, process, ids);
        ProcessNamespaces.Dump(process.Pid, ids);
        ProcessNamespaces.DumpPidForChildren(session, process.Pid, ids);
        if (isRoot)
        {
            UtsNamespace.Dump(session, process);
            Mounts.MountNamespace.Dump(session, process);
            Network.NetworkNamespaceImages.Dump(session, process);
        }
    }

    /// <summary>
    /// inventory.img's root_ids as CRIU writes them: the ids of the dumping task itself. CRIU's restore compares the
    /// root task's ids with these to learn what the root shares with the restorer: an equal files_id would say that
    /// the root shares the restorer's descriptor table, which CRIU rejects ("Image corruption on kIDs data"), and a
    /// namespace id that differs, that the root's namespace is to be created from images of its own. So memory,
    /// descriptor table, fs information and signal handlers are numbered for this process (compared with every task
    /// like the tasks among themselves), and the namespaces are the root's (CriuPS restores into the restorer's, which
    /// is what equal namespace ids tell CRIU) but for a UTS, IPC, network, mount or time namespace of the root's own, which is saved: the engine's.
    /// </summary>
    public static TaskKobjIdsEntry InventoryRootIds(DumpSession session)
    {
        int self = Environment.ProcessId;
        var ids = session.Processes[0].Ids.Clone();
        ids.VmId = SharedObjectId(session, self, Kcmp.Vm, "vm");
        ids.FilesId = SharedObjectId(session, self, Kcmp.Files, "files");
        ids.FsId = SharedObjectId(session, self, Kcmp.Fs, "fs");
        ids.SighandId = SharedObjectId(session, self, Kcmp.Sighand, "sighand");
        ids.UtsNsId = ProcessNamespaces.RootIdsNamespace(session, "uts", ids.UtsNsId);
        ids.IpcNsId = ProcessNamespaces.RootIdsNamespace(session, "ipc", ids.IpcNsId);
        ids.NetNsId = ProcessNamespaces.RootIdsNamespace(session, "net", ids.NetNsId);
        ids.MntNsId = ProcessNamespaces.RootIdsNamespace(session, "mnt", ids.MntNsId);
        ids.TimeNsId = ProcessNamespaces.RootIdsNamespace(session, "time", ids.TimeNsId);
        return ids;
    }

    // Processes of the tree that share the object (kcmp says equal) share its id: the id of the first of them in
    // dump order, so that all of them name the same one. That first holder of each object is kept in kcmp's order of
    // the objects, and a process finds its object's among them by binary search, where it was compared with every
    // process before it: a dump of a 32-process tree of objects of their own made 2,768 kcmp calls in all (strace -c),
    // 4,377 before.
    private static uint SharedObjectId(DumpSession session, int pid, int kind, string name)
    {
        var holders = session.State<FirstHolders>().Of(kind);
        int low = 0, high = holders.Count;
        while (low < high)
        {
            int middle = (low + high) / 2;
            switch (Kcmp.Compare(pid, holders[middle], kind))
            {
                case 0:
                    return session.ObjectIds.For($"{name}:{holders[middle]}");
                case 1: // this process's object comes first
                    high = middle;
                    break;
                default:
                    low = middle + 1;
                    break;
            }
        }
        holders.Insert(low, pid);
        return session.ObjectIds.For($"{name}:{pid}");
    }

    // Per kind of object, the first process to hold each object met so far, in kcmp's order of the objects.
    private sealed class FirstHolders
    {
        private readonly Dictionary<int, List<int>> byKind = new();

        public List<int> Of(int kind)
        {
            if (!byKind.TryGetValue(kind, out var holders))
            {
                byKind[kind] = holders = new();
            }
            return holders;
        }
    }
}
