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
/// The namespaces a process lives in: its world (its cgroups are saved and restored by Resources/Cgroups). CriuPS
/// saves the tree's UTS namespace (UtsNamespace), IPC namespace (Ipc.IpcNamespace), network namespace
/// (Resources/Network) and mount namespace (Resources/Mounts), the root's in each case, its time namespaces (TimeNamespaces, nested ones too), and its PID namespaces (the root's, when the root is its init, and
/// those whose init the tree made: each process keeps its PID at every level, see Dump/TreePids), and none of the
/// others yet: a restored process lands in the restorer's. So the pre-flight check refuses a process whose other
/// namespaces are not the engine's, and one in a PID namespace whose init is not in the tree: restored, it would wake
/// up in another world (another PID, other mounts) without a word.
/// </summary>
internal static class ProcessNamespaces
{
    // What /proc/PID/ns/ shows and how a message names it; "net", "uts", "ipc", "mnt" and "time" are saved, not refused.
    private static readonly (string Link, string Shown)[] NotSaved =
    {
        ("user", "user namespace"),
        ("cgroup", "cgroup namespace"),
    };

    private const string Network = "net", Uts = "uts", Ipc = "ipc", Mount = "mnt", Pid = "pid", PidForChildren = "pid_for_children";

    // Namespaces saved once for the tree, the root's, as CRIU saves them: every process must be in the root's.
    private static readonly (string Link, string Shown)[] SavedForTheTree =
        { (Network, "network namespace"), (Uts, "UTS namespace"), (Ipc, "IPC namespace"), (Mount, "mount namespace") };

    /// <summary>
    /// What keeps the process <paramref name="pid"/> of the tree of <paramref name="root"/> from being restored in the
    /// same world: each namespace that is not the engine's (but the network, UTS and IPC namespaces, which must be the
    /// root's, a network namespace's devices of kinds CriuPS makes, and a PID namespace whose init is in the tree) and a thread in other namespaces than its
    /// process (the cgroup namespace included: a process's cgroups are saved, a cgroup namespace of its own is not).
    /// Empty when there is none.
    /// </summary>
    public static IEnumerable<string> Problems(int pid, int root)
    {
        foreach (var problem in PidNamespaceProblems(pid, root))
        {
            yield return problem;
        }
        // The tree's network, UTS and IPC namespaces are saved, the root's: every process must be in them.
        foreach (var (link, shown) in SavedForTheTree)
        {
            if (pid != root && Namespace(pid, link) is { } theirs && Namespace(root, link) is { } roots && theirs != roots)
            {
                yield return $"its {shown} ({theirs}) is not the root's ({roots}): CriuPS saves one {shown}, the root's, as CRIU does";
            }
        }
        if (pid == root && !IsEngines(pid, Network))
        {
            foreach (var problem in Resources.Network.NetworkNamespaceImages.Problems(pid))
            {
                yield return problem;
            }
        }
        if (!IsEngines(pid, Mount))
        {
            var problems = pid == root ? Mounts.MountNamespace.Problems(pid) : [];
            foreach (var problem in problems.Concat(Mounts.MountNamespace.ViewProblems(pid)))
            {
                yield return problem;
            }
        }
        foreach (var (link, shown) in NotSaved)
        {
            var theirs = Namespace(pid, link);
            var ours = Namespace(Environment.ProcessId, link);
            if (theirs is not null && ours is not null && theirs != ours)
            {
                yield return $"its {shown} ({theirs}) is not the one CriuPS runs in ({ours}): CriuPS does not save namespaces of this kind yet, "
                    + "and the restored process would live in the restorer's (run Checkpoint-Process in the same namespaces as the process, e.g. with nsenter)";
            }
        }
        // The process's links read once, each thread's in its own ns directory (readlinkat, no path walked per link):
        // 64 threads asked for 1,152 path walks, 7.7 ms of the checks of a dump (perf).
        var kinds = NotSaved.Select(n => n.Link).Append(Pid).Append("time").Concat(SavedForTheTree.Select(s => s.Link)).ToArray();
        var processes = kinds.Select(link => Namespace(pid, link)).ToArray();
        foreach (var task in Tasks(pid).Where(t => t != pid))
        {
            using var links = FileDescriptor.TryOpen($"/proc/{pid}/task/{task}/ns", O.RDONLY | O.DIRECTORY, out _);
            for (int i = 0; links is not null && i < kinds.Length; i++)
            {
                var thread = Readlink.ReadAt(links, kinds[i], out _);
                if (thread is not null && thread != processes[i])
                {
                    yield return $"its thread {task} is in another {kinds[i]} namespace ({thread}) than the process: CriuPS restores one set of namespaces per process";
                }
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

    /// At dump: a network namespace of its own is recorded (inode, and name in /run/netns): at restore, the sockets
    /// saved in the same namespace (InetSkEntry and PacketSockEntry record theirs alike) go to the tree's.
    /// </summary>
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

    /// <summary>Has a restored process open the namespace file at <paramref name="path"/>, enter it (setns) and close it.</summary>
    public static void Join(Injection process, string path, int type, string what)
    {
        var caller = process.Caller;
        var scratch = process.Scratch;
        scratch.Reset();
        var name = scratch.PutString(path);
        int fd = caller.Checked($"open of {what}", RemoteCall.Open(name, O.RDONLY | O.CLOEXEC));
        try
        {
            caller.Checked($"setns into {what}", RemoteCall.Setns(fd, type));
        }
        finally
        {
            caller.Call(RemoteCall.Close(fd));
        }
    }

    /// <summary>Whether the process's namespace of the kind <paramref name="link"/> ("uts", "net", "ipc") is the one the engine runs in.</summary>
    public static bool IsEngines(int pid, string link) => Namespace(pid, link) == Namespace(Environment.ProcessId, link);

    /// <summary>
    /// The id inventory.img's root_ids give a namespace kind CriuPS saves: the engine's when the tree's root has one of
    /// its own (so that CRIU, seeing the root's differ, makes it from the images), else the root's
    /// (<paramref name="rootId"/>).
    /// </summary>
    public static uint RootIdsNamespace(Dump.DumpSession session, string link, uint rootId) =>
        IsEngines(session.Processes[0].Pid, link) ? rootId : session.ObjectIds.For(Namespace(Environment.ProcessId, link)!);

    /// <summary>What /proc/PID/ns/<paramref name="link"/> shows ("net:[4026531833]"), or null when the kernel has no such namespace or the task is gone.</summary>
    public static string? Namespace(int pid, string link)
    {
        try
        {
            return ProcFiles.ReadLink($"/proc/{pid}/ns/{link}");
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
}
