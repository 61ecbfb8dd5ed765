using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Restore;
using CriuPS.Engine.Resources.Sockets;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Process;

/// <summary>
/// The namespaces and cgroups a process lives in: its world. CriuPS saves the tree's UTS namespace (UtsNamespace) and
/// its PID namespaces (the root's, when the root is its init, and those whose init the tree made: each process keeps
/// its PID at every level, see Dump/TreePids) and none of the others yet, and a restored process lands in the
/// restorer's, except for a network namespace of its own, which it joins again at restore (the namespace must still
/// exist, or exist again under the same name in /run/netns), as its sockets do. So the pre-flight check refuses a
/// process whose other namespaces or whose cgroups are not the engine's, and one in a PID namespace whose init is not
/// in the tree: restored, it would wake up in another world (another PID, other mounts, other limits) without a word.
/// </summary>
internal static class ProcessNamespaces
{
    // What /proc/PID/ns/ shows and how a message names it; "net" is joined again, not refused.
    private static readonly (string Link, string Shown)[] NotSaved =
    {
        ("mnt", "mount namespace"),
        ("ipc", "IPC namespace"),
        ("user", "user namespace"),
        ("cgroup", "cgroup namespace"),
        ("time", "time namespace"),
        ("time_for_children", "time namespace for its children"),
    };

    private const string Network = "net", Uts = "uts", Pid = "pid", PidForChildren = "pid_for_children";

    /// <summary>
    /// What keeps the process <paramref name="pid"/> of the tree of <paramref name="root"/> from being restored in the
    /// same world: each namespace that is not the engine's (but the network's, the UTS namespace, which must be the
    /// root's, and a PID namespace whose init is in the tree), a thread in other namespaces than its process, and each
    /// cgroup of the process or one of its threads that is not the engine's. Empty when there is none.
    /// </summary>
    public static IEnumerable<string> Problems(int pid, int root)
    {
        foreach (var problem in PidNamespaceProblems(pid, root))
        {
            yield return problem;
        }
        // The tree's UTS namespace is saved, the root's (UtsNamespace): every process must be in it.
        if (pid != root && Namespace(pid, Uts) is { } uts && Namespace(root, Uts) is { } rootUts && uts != rootUts)
        {
            yield return $"its UTS namespace ({uts}) is not the root's ({rootUts}): CriuPS saves one UTS namespace, the root's, as CRIU does";
        }
        foreach (var (link, shown) in NotSaved)
        {
            var theirs = Namespace(pid, link);
            var ours = Namespace(Environment.ProcessId, link);
            // A namespace for its children that is the process's own is said once, with the process's.
            bool saidAlready = link.EndsWith("_for_children", StringComparison.Ordinal) && theirs == Namespace(pid, link[..link.IndexOf('_')]);
            if (theirs is not null && ours is not null && theirs != ours && !saidAlready)
            {
                yield return $"its {shown} ({theirs}) is not the one CriuPS runs in ({ours}): CriuPS does not save namespaces of this kind yet, "
                    + "and the restored process would live in the restorer's (run Checkpoint-Process in the same namespaces as the process, e.g. with nsenter)";
            }
        }
        var ownCgroups = Cgroups($"/proc/{Environment.ProcessId}");
        foreach (var task in Tasks(pid))
        {
            string who = task == pid ? "it" : $"its thread {task}";
            if (task != pid)
            {
                foreach (var link in NotSaved.Select(n => n.Link).Where(l => !l.EndsWith("_for_children", StringComparison.Ordinal)).Append(Pid).Append(Network).Append(Uts))
                {
                    var thread = Namespace(pid, link, task);
                    if (thread is not null && thread != Namespace(pid, link))
                    {
                        yield return $"its thread {task} is in another {link} namespace ({thread}) than the process: CriuPS restores one set of namespaces per process";
                    }
                }
            }
            var cgroups = Cgroups($"/proc/{pid}/task/{task}");
            foreach (var (hierarchy, path) in cgroups.Where(c => ownCgroups.TryGetValue(c.Key, out var own) && own != c.Value))
            {
                yield return $"{who} sits in cgroup {Hierarchy(hierarchy)}:{path}, not in this session's ({ownCgroups[hierarchy]}): CriuPS does not restore cgroups yet, "
                    + "and the restored process would join the restorer's (move it, or run Checkpoint-Process from the same cgroups)";
            }
        }
    }

    /// <summary>
    /// A PID namespace is saved whole, from its init, as CRIU saves the root's: the root may be the init of its own
    /// (`unshare --pid --fork` checkpointed below unshare), and a process of the tree may be the init of a namespace made
    /// by its parent (unshare checkpointed itself), whose pid_for_children it is; every other process must be in its
    /// parent's namespace. A namespace made for children none of which runs yet cannot be told from its processes.
    /// </summary>
    private static IEnumerable<string> PidNamespaceProblems(int pid, int root)
    {
        var own = Namespace(pid, Pid);
        var forChildren = Namespace(pid, PidForChildren);
        if (own is null)
        {
            yield break; // it ended meanwhile: the tree's check looks again
        }
        if (forChildren is null && PendingPidNamespace(pid))
        {
            yield return "it made a PID namespace for its children, in which no process runs yet: CriuPS saves a PID namespace with its init, its first process, which is not there";
        }
        else if (forChildren is not null && forChildren != own && !Children(pid).Any(c => Namespace(c, Pid) == forChildren && IsInitOfItsNamespace(c)))
        {
            yield return $"its PID namespace for its children ({forChildren}) has no init among its children: CriuPS saves a PID namespace with its init";
        }
        if (pid == root)
        {
            if (own != Namespace(Environment.ProcessId, Pid) && !IsInitOfItsNamespace(pid))
            {
                yield return $"its PID namespace ({own}) is not the one CriuPS runs in ({Namespace(Environment.ProcessId, Pid)}), and its init is not in the tree: "
                    + "CriuPS saves a PID namespace whole, from its init, as CRIU does (checkpoint the namespace's init, or run Checkpoint-Process in that namespace)";
            }
            yield break;
        }
        int parent = ProcStat.Read(pid).PPid;
        if (own != Namespace(parent, Pid) && !(IsInitOfItsNamespace(pid) && NamespacePids(pid).Length == NamespacePids(parent).Length + 1))
        {
            yield return $"its PID namespace ({own}) is neither its parent's nor one it is the init of: CriuPS saves a PID namespace whole, from its init";
        }
    }

    private static int[] NamespacePids(int pid) => ProcStatus.Read(pid).NamespacePids;

    // PID 1 where it lives.
    private static bool IsInitOfItsNamespace(int pid) => NamespacePids(pid) is [_, .., 1];

    private static IEnumerable<int> Children(int pid) =>
        Tasks(pid).SelectMany(task => ProcFiles.ReadText($"/proc/{pid}/task/{task}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(child => int.Parse(child, System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>At dump: a PID namespace for its children other than its own, whose init is its child, is recorded to be entered again.</summary>
    public static void DumpPidForChildren(DumpSession session, int pid, TaskKobjIdsEntry ids)
    {
        if (Namespace(pid, PidForChildren) is { } forChildren && forChildren != Namespace(pid, Pid))
        {
            ids.CriupsPidForChildrenNsId = session.ObjectIds.For(forChildren);
        }
    }

    /// <summary>At dump: a network namespace of its own is recorded (inode, and name in /run/netns) to be joined again.</summary>
    public static void Dump(int pid, TaskKobjIdsEntry ids)
    {
        ulong inode = FileStatus.Of($"/proc/{pid}/ns/{Network}").Inode;
        if (inode != NetworkNamespace.EngineInode)
        {
            ids.CriupsNetnsInode = inode;
            if (NetworkNamespace.NameOf(inode) is { } name)
            {
                ids.CriupsNetnsName = name;
            }
        }
    }

    /// <summary>What this session lacks to put a process back into its own network namespace: setns needs CAP_SYS_ADMIN.</summary>
    public static IEnumerable<Obstacle> Obstacles(ProcessImages process, SessionPrivileges privileges)
    {
        if (process.Ids.HasCriupsNetnsInode && !privileges.Has(Capability.SysAdmin))
        {
            yield return new($"it lived in {Describe(process.Ids)}, and joining it (setns) needs CAP_SYS_ADMIN", Capability.SysAdmin);
        }
    }

    /// <summary>
    /// At restore, before the credentials change: a process that had a network namespace of its own joins it again
    /// (it opens the engine's descriptor of the namespace through /proc and calls setns, then closes it); the threads
    /// it creates afterwards are in it too.
    /// </summary>
    public static void Restore(RestoreSession session, RestoringProcess process)
    {
        var ids = process.Images.Ids;
        if (!ids.HasCriupsNetnsInode)
        {
            return;
        }
        using var ns = NetworkNamespace.Find(ids.CriupsNetnsInode, ids.HasCriupsNetnsName ? ids.CriupsNetnsName : null)
            ?? throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"Process {process.Pid} lived in {Describe(ids)}, which does not exist now.", session.Images.Directory,
                "CriuPS does not save network namespaces: create it again (ip netns add), then restore.");
        Join(process.Injection, $"/proc/{session.EnginePid}/fd/{ns.Handle.Value}", Setns.CloneNewNet, ns.ToString());
        session.Log.Detail($"process {process.Pid}: back in its {ns}");
    }

    /// <summary>Has a restored process open the namespace file at <paramref name="path"/>, enter it (setns) and close it.</summary>
    public static void Join(Injection process, string path, int type, string what)
    {
        var caller = process.Caller;
        var scratch = process.Scratch;
        scratch.Reset();
        var name = scratch.PutString(path);
        long fd = caller.Checked($"open of {what}", SyscallNumber.Openat, unchecked((ulong)Fcntl.AT_FDCWD), name.Value, (ulong)(O.RDONLY | O.CLOEXEC));
        try
        {
            caller.Checked($"setns into {what}", SyscallNumber.Setns, (ulong)fd, (ulong)type);
        }
        finally
        {
            caller.Call(SyscallNumber.Close, (ulong)fd);
        }
    }

    private static string Describe(TaskKobjIdsEntry ids) =>
        NetworkNamespace.Describe(ids.CriupsNetnsInode, ids.HasCriupsNetnsName ? ids.CriupsNetnsName : null);

    /// <summary>What /proc/PID/ns/<paramref name="link"/> shows ("net:[4026531833]"), or null when the kernel has no such namespace or the task is gone.</summary>
    public static string? Namespace(int pid, string link, int? task = null)
    {
        try
        {
            return ProcFiles.ReadLink(task is null ? $"/proc/{pid}/ns/{link}" : $"/proc/{pid}/task/{task}/ns/{link}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NativeException)
        {
            return null;
        }
    }

    // After unshare(CLONE_NEWPID) and before its first child, /proc/PID/ns/pid_for_children is a link that cannot be read.
    private static bool PendingPidNamespace(int pid) =>
        Namespace(pid, "pid") is not null && FileStatus.OfEntry($"/proc/{pid}/ns/pid_for_children") is not null;

    private static List<int> Tasks(int pid)
    {
        try
        {
            return ProcFiles.ThreadIds(pid);
        }
        catch (DirectoryNotFoundException)
        {
            return []; // it ended meanwhile: the tree's check looks again
        }
    }

    // /proc/.../cgroup: "4:memory:/path" per hierarchy, keyed by "4:memory" (v2: "0:").
    private static Dictionary<string, string> Cgroups(string task)
    {
        var cgroups = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            foreach (var line in File.ReadAllLines(Path.Combine(task, "cgroup")))
            {
                int last = line.IndexOf(':', line.IndexOf(':') + 1);
                if (last > 0)
                {
                    cgroups[line[..last]] = line[(last + 1)..];
                }
            }
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            // the thread ended meanwhile
        }
        return cgroups;
    }

    // "4:memory" -> "memory"; "0:" (cgroup v2) -> "v2".
    private static string Hierarchy(string key)
    {
        string controllers = key[(key.IndexOf(':') + 1)..];
        return controllers.Length == 0 ? "v2" : controllers;
    }
}
