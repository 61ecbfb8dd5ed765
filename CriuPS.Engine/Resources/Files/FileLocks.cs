using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// File locks (filelocks.img, one FileLockEntry per lock, as CRIU's --file-locks writes it): flock() and OFD locks
/// belong to an open file description, classic POSIX record locks to a process. Dump: the "lock:" lines of each
/// description's fdinfo (flock and OFD locks once per description, POSIX locks once per owner). Restore: OFD locks are
/// taken by the engine on its own copy of the description before the process pulls it in; POSIX and flock locks are
/// taken inside their process with an injected fcntl(F_SETLK) or flock once its descriptors are in place. A flock or
/// OFD lock outlives the descriptor it was taken through as long as its description lives, and a memory mapping keeps
/// the description: such locks, which no descriptor shows, go with the mapping (<see cref="MappedFileLocks"/>). A POSIX
/// lock cannot (closing any descriptor of the file releases its owner's locks on it). Leases (F_SETLEASE) belong to
/// the description too and are saved as CRIU saves them (FL_LEASE); they are taken again inside the process after
/// every process of the tree has its descriptors, so that no open of the restore breaks them. A lease being broken (an
/// open waits for its holder to give it up), and locks that no descriptor or mapping of the tree holds, are refused
/// before anything is frozen.
/// </summary>
internal static class FileLocks
{
    // CRIU's FL_* flags (criu/include/file-lock.h).
    private const uint FlPosix = 1, FlFlock = 2, FlOfd = 4, FlLease = 8;

    /// <summary>The locks the tree's descriptors show, and the POSIX locks already saved (a process shows them on every descriptor of the description they were taken through).</summary>
    private sealed class SavedLocks
    {
        public HashSet<LockInfo> Shown { get; } = new();

        public HashSet<LockInfo> Posix { get; } = new();
    }

    /// <summary>The locks that the tree's descriptors show, once every descriptor is saved.</summary>
    public static IReadOnlySet<LockInfo> Shown(DumpSession session) => session.State<SavedLocks>().Shown;

    /// <summary>The locks of the tree CriuPS cannot save, one line each (for the pre-flight check).</summary>
    /// <param name="pids">The live processes of the tree.</param>
    /// <param name="descriptors">Their descriptors.</param>
    /// <param name="areas">Their memory areas, by process.</param>
    /// <param name="locks">/proc/locks (<see cref="LockInfo.ReadAll"/>), read once they were probed or during.</param>
    public static IEnumerable<string> Problems(IReadOnlyCollection<int> pids, IEnumerable<DescriptorProbe> descriptors, IReadOnlyDictionary<int, List<VmaInfo>> areas, List<LockInfo> locks)
    {
        // Only a file the kernel lists a lock on has "lock:" lines to read in fdinfo. Matched by inode number alone:
        // the device /proc/locks names may differ from what stat reports (overlayfs), and a spare read costs little.
        var lockedInodes = locks.Select(l => l.Inode).ToHashSet();
        var shown = new HashSet<LockInfo>();
        var problems = new List<string>();
        foreach (var descriptor in descriptors.Where(d => lockedInodes.Contains(d.Status.Inode)))
        {
            var (pid, fd) = (descriptor.Pid, descriptor.Fd);
            foreach (var (line, held) in Read(pid, fd))
            {
                if (held is null || held.Kind == LockKind.Other)
                {
                    problems.Add($"process {pid}: fd {fd}: a lock CriuPS does not know ('{line}')");
                    continue;
                }
                shown.Add(held);
                if (held.Kind == LockKind.Lease && held.Mode != "ACTIVE")
                {
                    // Its holder was told to give it up and an open waits for it: the restore could not make that wait again.
                    problems.Add($"process {pid}: fd {fd}: a lease being broken ({held.Mode}: an open of the file waits for its holder to give it up)");
                }
            }
        }
        // A lock that none of the tree's descriptors shows: a flock or OFD lock on a file the tree maps lives on with
        // that mapping; any other lock the kernel lists for one of our processes lives on through something we do not
        // save (a description handed to a process outside the tree).
        foreach (var held in locks.Where(l => !shown.Contains(l)))
        {
            var problem = MappedFileLocks.Problem(held, pids, areas);
            if (problem is not null)
            {
                problems.Add(problem);
            }
        }
        return problems;
    }

    // The locks held through a descriptor; none when it was closed meanwhile.
    private static IEnumerable<(string Line, LockInfo? Lock)> Read(int pid, int fd)
    {
        FdInfo info;
        try
        {
            info = FdInfo.Read(pid, fd);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Array.Empty<(string, LockInfo?)>();
        }
        return Of(info);
    }

    // The "lock:" lines of a descriptor, each with the lock it describes (null: a line this parser does not know).
    private static IEnumerable<(string Line, LockInfo? Lock)> Of(FdInfo info) =>
        info.Lines.Where(l => l.Key == "lock").Select(l => (l.Value, LockInfo.TryParse(l.Value)));

    /// <summary>
    /// Records the locks held through <paramref name="fd"/> of process <paramref name="pid"/>: flock and OFD locks once per
    /// open file description (every process sharing it shows them), POSIX locks once per owner.
    /// </summary>
    public static void Dump(DumpSession session, int pid, int fd, FdInfo info, bool newDescription)
    {
        foreach (var (line, held) in Of(info))
        {
            if (held is null || held.Kind == LockKind.Other)
            {
                throw new CheckpointException(CheckpointErrorKind.Unsupported, $"Process {pid} holds a lock on fd {fd} that CriuPS cannot save ('{line}').", pid);
            }
            var saved = session.State<SavedLocks>();
            saved.Shown.Add(held);
            if (held.Kind == LockKind.Posix ? !saved.Posix.Add(held) : !newDescription)
            {
                continue;
            }
            // A POSIX lock is restored in its owner (CLONE_FILES processes share the descriptor); the others on the description behind pid's fd.
            session.AddImageEntry(ImageTypes.FileLocks, null, Entry(held, held.Kind == LockKind.Posix ? held.Pid : pid, fd));
            session.Log.Detail($"process {pid}: fd {fd} holds a {held} from {held.Start} to {held.End?.ToString() ?? "the end"}");
        }
    }

    /// <summary>Takes the saved OFD locks on the engine's copies of the descriptions (before the processes pull them in).</summary>
    public static void TakeOnDescriptions(RestoreSession session)
    {
        foreach (var (saved, fd) in Saved(session).Where(s => (s.Lock.Flag & FlOfd) != 0))
        {
            int errno = Fcntl.TrySetLock(session.OpenFiles[fd.Id], Fcntl.F_OFD_SETLK, Range(saved));
            if (errno != 0)
            {
                throw Conflict(session, saved, fd, errno);
            }
        }
    }

    /// <summary>
    /// Takes the saved POSIX and flock locks of a process, inside it, once its descriptors are in place: a POSIX lock
    /// belongs to the process that takes it, and a flock lock, though it belongs to the description, shows the pid of
    /// the process that took it in /proc/locks. A lease, too: the kernel records the pid of its taker, and every process
    /// of the tree has its descriptors by now, so no later open of the restore breaks it.
    /// </summary>
    public static void TakeInProcess(RestoreSession session, RestoringProcess process)
    {
        foreach (var (saved, fd) in Saved(session).Where(s => (s.Lock.Flag & (FlPosix | FlFlock | FlLease)) != 0 && s.Lock.Pid == process.Pid))
        {
            int errno = TakeThrough(process, saved, (int)saved.Fd);
            if (errno != 0)
            {
                throw Conflict(session, saved, fd, errno);
            }
        }
    }

    /// <summary>Takes a saved lock inside <paramref name="process"/> through its descriptor <paramref name="fd"/>; returns 0 or the errno.</summary>
    public static int TakeThrough(RestoringProcess process, FileLockEntry saved, int fd)
    {
        long result;
        if ((saved.Flag & FlFlock) != 0)
        {
            int operation = (saved.Type == (uint)Fcntl.F_WRLCK ? Flock.LOCK_EX : Flock.LOCK_SH) | Flock.LOCK_NB;
            result = process.Caller.Call(RemoteCall.Flock(fd, operation));
        }
        else if ((saved.Flag & FlLease) != 0)
        {
            result = process.Caller.Call(RemoteCall.SetLease(fd, saved.Type));
        }
        else
        {
            var scratch = process.Injection.Scratch;
            scratch.Reset();
            var range = scratch.Put(Range(saved));
            result = process.Caller.Call(RemoteCall.SetRecordLock(fd, ofDescription: (saved.Flag & FlOfd) != 0, range));
        }
        return result < 0 ? (int)-result : 0;
    }

    /// <summary>A saved lock of the kind of <paramref name="held"/>, held by <paramref name="pid"/> through <paramref name="fd"/>.</summary>
    public static FileLockEntry Entry(LockInfo held, int pid, int fd) => new()
    {
        Flag = held.Kind switch { LockKind.Posix => FlPosix, LockKind.Flock => FlFlock, LockKind.Lease => FlLease, _ => FlOfd },
        Type = (uint)(held.IsWrite ? Fcntl.F_WRLCK : Fcntl.F_RDLCK),
        Pid = pid,
        Fd = fd,
        Start = held.Start,
        Len = held.Length,
    };

    /// <summary>"flock write lock", "OFD read lock"...: what a saved lock is, in words.</summary>
    public static string Describe(FileLockEntry saved) => (saved.Flag & FlLease) != 0
        ? $"{(saved.Type == (uint)Fcntl.F_WRLCK ? "write" : "read")} lease"
        : $"{((saved.Flag & FlPosix) != 0 ? "POSIX" : (saved.Flag & FlFlock) != 0 ? "flock" : "OFD")} {(saved.Type == (uint)Fcntl.F_WRLCK ? "write" : "read")} lock";

    private static RecordLock Range(FileLockEntry saved) => new()
    {
        Type = (short)saved.Type,
        Whence = 0,
        Start = saved.Start,
        Length = saved.Len,
    };

    // Each saved lock with the descriptor it is held through.
    private static IEnumerable<(FileLockEntry Lock, FdinfoEntry Fd)> Saved(RestoreSession session)
    {
        var path = Path.Combine(session.Images.Directory, ImageTypes.FileLocks.FileName(null));
        foreach (var saved in session.Images.Entries(ImageTypes.FileLocks).Select(e => (FileLockEntry)e.Message))
        {
            if ((saved.Flag & (FlPosix | FlFlock | FlOfd | FlLease)) == 0)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                    $"{path}: a lock of kind {saved.Flag} held by process {saved.Pid}, which CriuPS cannot restore.", path);
            }
            if ((saved.Flag & FlLease) != 0 && saved.Type is not ((uint)Fcntl.F_RDLCK or (uint)Fcntl.F_WRLCK))
            {
                // CRIU marks a lease being broken with LEASE_BREAKING (4) in its type; CriuPS refuses those at dump time.
                throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                    $"{path}: a lease of type {saved.Type} (being broken?) held by process {saved.Pid}, which CriuPS cannot restore.", path);
            }
            var owner = session.Images.Processes.FirstOrDefault(p => p.Pid == saved.Pid)
                ?? throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"{path}: a lock of process {saved.Pid}, which is not in the image.", path);
            var fd = owner.FileDescriptors.FirstOrDefault(f => f.Fd == (uint)saved.Fd)
                ?? throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"{path}: a lock on fd {saved.Fd} of process {saved.Pid}, which has no such descriptor.", path);
            yield return (saved, fd);
        }
    }

    private static CheckpointException Conflict(RestoreSession session, FileLockEntry saved, FdinfoEntry fd, int errno)
    {
        var file = session.Images.File(fd.Id);
        var name = file.Reg?.Name ?? file.Type.ToString();
        return Conflict(saved, $"fd {saved.Fd} ('{name}')", errno);
    }

    /// <summary>The error of a saved lock on <paramref name="what"/> that cannot be taken again.</summary>
    public static CheckpointException Conflict(FileLockEntry saved, string what, int errno) => new(CheckpointErrorKind.RestoreFailed,
        $"The {Describe(saved)} of process {saved.Pid} on {what} cannot be taken again: {Errno.Describe(errno)}.",
        saved.Pid,
        errno is Errno.EAGAIN or Errno.EACCES ? "Another process holds a conflicting lock on that file now; stop it, then restore again." : null);
}
