using System.Globalization;
using System.Text;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Native.Diagnostics;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Cgroups;

/// <summary>
/// Checkpoint-Process -FreezeCgroup (CRIU's --freeze-cgroup): the cgroup holding the tree is frozen at once by the
/// kernel (v1 freezer.state FROZEN, v2 cgroup.freeze 1), so that no process of it can fork, exit or move while its
/// tasks are seized: a fork bomb is caught whole. Its members must be the tree, exactly. As CRIU, the cgroup is
/// thawed as soon as every task is seized with an interrupt pending, which stops each before it runs a single
/// instruction; from there ptrace holds them. A frozen cgroup must never outlive us: a guard process (a shell we
/// start in a session of its own, reading a pipe whose only writer is this process) thaws it when the pipe closes
/// without the word that we thawed it ourselves, which is what happens when this process dies, even by SIGKILL.
/// </summary>
internal sealed class CgroupFreezer : IDisposable
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(5);
    private readonly string file, thawed;
    private readonly EngineLog log;
    private int guardPid;
    private FileDescriptor? guardPipe;
    private bool frozen;

    private CgroupFreezer(string directory, bool v2, EngineLog log)
    {
        Directory = directory;
        IsV2 = v2;
        file = Path.Combine(directory, v2 ? "cgroup.freeze" : "freezer.state");
        thawed = v2 ? "0" : "THAWED";
        this.log = log;
    }

    /// <summary>The cgroup's directory.</summary>
    public string Directory { get; }

    public bool IsV2 { get; }

    /// <summary>Freezes the cgroup at <paramref name="path"/> and waits until the kernel says every task of it is frozen.</summary>
    public static CgroupFreezer Freeze(string path, TimeSpan timeout, EngineLog log)
    {
        string directory = Path.GetFullPath(path).TrimEnd('/');
        bool v1 = File.Exists(Path.Combine(directory, "freezer.state")), v2 = File.Exists(Path.Combine(directory, "cgroup.freeze"));
        if (!v1 && !v2)
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"'{path}' is no cgroup that can be frozen: it has neither freezer.state (a cgroup of the v1 freezer hierarchy, not its root) nor cgroup.freeze (a cgroup v2 cgroup, not the root).",
                path, "Name the cgroup directory that holds the tree, e.g. /sys/fs/cgroup/freezer/NAME or a cgroup v2 directory.");
        }
        var hierarchy = CgroupHierarchy.Mounted().Values.FirstOrDefault(h => directory == h.MountPoint.TrimEnd('/') || directory.StartsWith(h.MountPoint.TrimEnd('/') + "/", StringComparison.Ordinal));
        if (hierarchy is not null && CgroupMembership.Of(Environment.ProcessId).FirstOrDefault(m => m.Hierarchy == hierarchy.Name).Path is { } own
            && hierarchy.DirectoryOf(own) is { } ownDirectory && (ownDirectory == directory || ownDirectory.StartsWith(directory + "/", StringComparison.Ordinal)))
        {
            throw new CheckpointException(CheckpointErrorKind.SelfCheckpoint,
                $"This PowerShell session is in the cgroup {directory} ({hierarchy.Shown}:{own}): freezing it would freeze CriuPS too.", directory,
                "Run Checkpoint-Process from outside the cgroup.");
        }
        var freezer = new CgroupFreezer(directory, v2 && !v1, log);
        try
        {
            freezer.StartGuard();
            freezer.frozen = true;
            freezer.Write(freezer.IsV2 ? "1" : "FROZEN");
            freezer.WaitFrozen(timeout);
            DeathPoint.Reach(DeathPoint.CgroupFrozen);
        }
        catch
        {
            freezer.Dispose();
            throw;
        }
        log.Detail($"froze the cgroup {directory} ({(freezer.IsV2 ? "cgroup.freeze" : "freezer.state")})");
        return freezer;
    }

    // Every process in the cgroup and the cgroups below it (which freeze with it).
    private HashSet<int> Members()
    {
        var members = new HashSet<int>();
        foreach (var procs in System.IO.Directory.EnumerateFiles(Directory, "cgroup.procs", SearchOption.AllDirectories))
        {
            foreach (var line in File.ReadAllLines(procs))
            {
                members.Add(int.Parse(line, CultureInfo.InvariantCulture));
            }
        }
        return members;
    }

    /// <summary>
    /// Refuses the dump unless the cgroup holds exactly the live processes of the tree: one outside it could fork or
    /// change while the others are seized, one of it outside the tree would be frozen for nothing (and not saved).
    /// </summary>
    public void CheckMembers(int root, IEnumerable<int> tree)
    {
        var members = Members();
        var live = tree.ToHashSet();
        foreach (int pid in live.Where(p => !members.Contains(p)))
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"Process {pid} of the tree of {root} is not in the cgroup {Directory}, which -FreezeCgroup froze: it could change while the others are seized. The processes were left running.", pid,
                "Move every process of the tree into the cgroup, or checkpoint without -FreezeCgroup.");
        }
        foreach (int pid in members.Where(p => !live.Contains(p)))
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"Process {pid} ({Comm(pid)}) is in the cgroup {Directory}, which -FreezeCgroup froze, but not in the tree of {root}: it would not be saved. The processes were left running.", pid,
                "Name the root of everything in the cgroup, or move that process out of it.");
        }
    }

    /// <summary>Thaws the cgroup if we froze it, and lets the guard go; safe to call again.</summary>
    public void Thaw()
    {
        if (frozen)
        {
            Write(thawed);
            frozen = false;
            log.Detail($"thawed the cgroup {Directory}");
        }
        StopGuard();
    }

    public void Dispose()
    {
        try
        {
            Thaw();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.Error($"thawing the cgroup {Directory}: {e.Message}");
            StopGuard(); // the guard cannot do better: leave it its last try, through the pipe's end
        }
    }

    private void WaitFrozen(TimeSpan timeout)
    {
        if (!(IsV2 ? CgroupEvents.WaitFor(Directory, "frozen 1", timeout) : WaitFrozenV1(timeout)))
        {
            throw new CheckpointException(CheckpointErrorKind.FreezeTimeout,
                $"The cgroup {Directory} did not freeze within {timeout.TotalSeconds:0.#} s (a task sleeping in the kernel cannot be frozen before it wakes). It was thawed, and its processes left running.",
                Directory, "Checkpoint it again, or allow more time with -FreezeTimeout.");
        }
    }

    // cgroup v1's freezer.state reads FREEZING until every task is frozen, and the kernel notifies no change of it
    // (neither inotify nor poll: the v1 freezer calls no cgroup_file_notify), so only reading it again tells.
    private bool WaitFrozenV1(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (File.ReadAllText(file).Trim() != "FROZEN")
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }
            Thread.Sleep(Poll);
        }
        return true;
    }

    private void Write(string value)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        stream.Write(Encoding.ASCII.GetBytes(value));
    }

    // The guard: "read" returns when we write "released" or when the pipe's write end closes, ours being the only one
    // (close-on-exec: no other child inherits it); anything but "released" thaws.
    private void StartGuard()
    {
        var (read, write) = FileDescriptor.Pipe(O.CLOEXEC);
        using (read)
        {
            try
            {
                guardPid = PosixSpawn.Spawn("/bin/sh", ["criups-thaw", "-c", "read answer; [ \"$answer\" = released ] || printf %s \"$2\" > \"$1\"", "criups-thaw", file, thawed],
                    newSession: true, stdin: read.Value);
                guardPipe = write;
            }
            catch
            {
                write.Dispose();
                throw;
            }
        }
    }

    private void StopGuard()
    {
        if (guardPipe is not null)
        {
            guardPipe.TryWrite(Encoding.ASCII.GetBytes(frozen ? "\n" : "released\n"));
            guardPipe.Dispose();
            guardPipe = null;
        }
        if (guardPid > 0)
        {
            Wait4.Wait(guardPid, 0);
            guardPid = 0;
        }
    }

    private static string Comm(int pid)
    {
        try
        {
            return ProcStat.Read(pid).Comm;
        }
        catch (IOException)
        {
            return "gone";
        }
    }
}
