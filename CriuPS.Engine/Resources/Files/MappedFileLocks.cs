using CriuPS.Engine.Dump;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// flock and OFD locks on a file that only a memory mapping keeps open: the JVM opens its hsperfdata file, locks it,
/// maps it and closes the descriptor. Both kinds belong to the open file description, which the mapping keeps alive,
/// so the kernel keeps the lock until the last mapping goes (a POSIX lock would be gone with the descriptor). CRIU
/// drops such locks on dump; CriuPS keeps them with the mapping. Dump: a lock the kernel lists that none of the tree's
/// descriptors shows, on a file a process of the tree maps, is saved on the first area of the process holding it that
/// maps the file (the flock's taker when it maps it, else the first process that does; /proc/locks names no process
/// for an OFD lock). Restore: the process opens the file to map it, takes the lock through that descriptor before it
/// maps the file, and closes the descriptor once mapped: the lock stays with the mapping, and is the process's, as it
/// was. Which mapping holds a lock cannot be seen, and the restore maps every area of a file through one description.
/// </summary>
internal static class MappedFileLocks
{
    /// <summary>Which process each unseen lock on a mapped file goes with, and the locks already saved.</summary>
    private sealed class Holders
    {
        public bool Assigned { get; set; }

        /// <summary>/proc/locks as read once the tree was frozen (<see cref="ReadAtFreeze"/>).</summary>
        public Task<List<LockInfo>>? AtFreeze { get; set; }

        public Dictionary<LockInfo, int> ByLock { get; } = new();

        public HashSet<LockInfo> Saved { get; } = new();
    }

    /// <summary>Whether an area maps the file a lock is on.</summary>
    private static bool Maps(VmaInfo area, LockInfo held) =>
        !area.IsAnonymous && area.Inode == held.Inode && area.DevMajor == held.DevMajor && area.DevMinor == held.DevMinor;

    /// <summary>
    /// Why a lock that no descriptor of the tree shows cannot be saved (pre-flight), or null: when it is a flock or OFD
    /// lock on a file the tree maps, or no lock of the tree at all.
    /// </summary>
    public static string? Problem(LockInfo held, IReadOnlyCollection<int> pids, IReadOnlyDictionary<int, List<VmaInfo>> areas)
    {
        bool mapped = pids.Any(pid => areas.TryGetValue(pid, out var own) && own.Any(a => Maps(a, held)));
        var where = $"inode {held.DevMajor:x2}:{held.DevMinor:x2}:{held.Inode}";
        switch (held.Kind)
        {
            case LockKind.Flock when mapped:
                return null;
            case LockKind.Ofd:
                return mapped && HolderOutside(held, pids) is int other
                    ? $"an {held} on {where}, a file the tree maps, that none of the tree's descriptors holds, and that process {other} outside the tree may hold (it has the file open or mapped too)"
                    : null;
            default:
                return pids.Contains(held.Pid)
                    ? $"process {held.Pid}: a {held} on {where} that none of the tree's descriptors or memory mappings holds (a file kept open by a process outside the tree)"
                    : null;
        }
    }

    // A process outside the tree that has the file of an OFD lock open or mapped: /proc/locks names no owner for OFD
    // locks, so such a lock may be that process's rather than the mapping's.
    private static int? HolderOutside(LockInfo held, IReadOnlyCollection<int> pids)
    {
        var mapsLine = $" {held.DevMajor:x2}:{held.DevMinor:x2} {held.Inode} ";
        foreach (int pid in ProcFiles.ProcessIds().Where(p => !pids.Contains(p) && p != Environment.ProcessId))
        {
            try
            {
                if (File.ReadAllText($"/proc/{pid}/maps").Contains(mapsLine, StringComparison.Ordinal)
                    || DescriptorProbe.All(pid).Any(d => d.Status.Inode == held.Inode && d.Status.DeviceMajor == held.DevMajor && d.Status.DeviceMinor == held.DevMinor))
                {
                    return pid;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // gone meanwhile, or a kernel thread
            }
        }
        return null;
    }

    /// <summary>
    /// The locks to save with <paramref name="area"/> of <paramref name="process"/> (its first area that maps a file with
    /// such a lock), as FileLockEntry with fd -1. Runs once every descriptor of the tree is saved.
    /// </summary>
    public static IEnumerable<FileLockEntry> Claim(DumpSession session, DumpedProcess process, VmaInfo area)
    {
        var holders = Assign(session);
        foreach (var (held, pid) in holders.ByLock)
        {
            if (pid == process.Pid && Maps(area, held) && holders.Saved.Add(held))
            {
                session.Log.Detail($"process {pid}: a {held} on '{area.Path}' is kept only by its mapping at {area.Range}; saved with it");
                yield return FileLocks.Entry(held, pid, -1);
            }
        }
    }

    /// <summary>
    /// Starts reading /proc/locks, on a thread of its own, as soon as the tree is frozen: the areas need it only once
    /// the descriptors are saved, and a read of /proc/locks takes the kernel's lock table for writing
    /// (percpu_down_write), whose first taker in a while waits for an RCU grace period: 8 to 30 ms on this kind of VM,
    /// most of the freeze of a small process, spent beside the frozen work instead of inside it.
    /// </summary>
    public static void ReadAtFreeze(DumpSession session) => session.State<Holders>().AtFreeze = Task.Run(LockInfo.ReadAll);

    // Decided once for the whole tree: the process that holds each unseen lock on a mapped file.
    private static Holders Assign(DumpSession session)
    {
        var holders = session.State<Holders>();
        if (holders.Assigned)
        {
            return holders;
        }
        holders.Assigned = true;
        var shown = FileLocks.Shown(session);
        var locks = holders.AtFreeze?.GetAwaiter().GetResult() ?? LockInfo.ReadAll();
        foreach (var held in locks.Where(l => l.Kind is LockKind.Flock or LockKind.Ofd && !shown.Contains(l)))
        {
            var mappers = session.Processes.Where(p => p.Vmas.Any(a => Maps(a, held))).Select(p => p.Pid).ToList();
            if (held.Kind == LockKind.Flock && !session.TreeOrder.Contains(held.Pid))
            {
                continue; // a process outside the tree took it: its lock, not ours
            }
            if (mappers.Count > 0)
            {
                holders.ByLock[held] = mappers.Contains(held.Pid) ? held.Pid : mappers[0];
            }
        }
        return holders;
    }

    /// <summary>
    /// Takes the locks saved with <paramref name="area"/> in the process, through <paramref name="fd"/>, the descriptor
    /// the area is about to be mapped through.
    /// </summary>
    public static void Take(RestoringProcess process, VmaEntry area, int fd, string file)
    {
        foreach (var saved in area.CriupsLocks)
        {
            int errno = FileLocks.TakeThrough(process, saved, fd);
            if (errno != 0)
            {
                throw FileLocks.Conflict(saved, $"'{file}' (kept only by its mapping at 0x{area.Start:x})", errno);
            }
        }
    }
}
