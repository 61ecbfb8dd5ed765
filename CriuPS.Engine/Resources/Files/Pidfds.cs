using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// pidfds (pidfd_entry, as CRIU 4 writes it): the process a pidfd names (fdinfo "Pid:", numbered for the image like
/// every saved PID, -1 once that process was reaped), its flags (PIDFD_NONBLOCK) and the pidfs inode, which tells the
/// pidfds of one reaped process apart from those of another. A pidfd of a process outside the tree is refused before
/// the freeze (nothing would bring that process back), and so is one of a single thread (PIDFD_THREAD), as CRIU does.
/// Restore: the engine opens a pidfd of the restored process of that PID (it exists, as a zombie too, once the tree is
/// made); for a reaped one it starts a short-lived process, opens every saved pidfd of that dead process on it, kills
/// and reaps it, as CRIU does: each then names a process that is gone (ESRCH to signals, "Pid: -1").
/// </summary>
internal sealed class Pidfds : AnonInodeKind
{
    private const int Reaped = -1;

    /// <summary>pidfds of reaped processes, opened in one go for each dead process and handed out by file id.</summary>
    private sealed class DeadPidfds : IDisposable
    {
        public Dictionary<uint, FileDescriptor> ById { get; } = new();

        public void Dispose()
        {
            foreach (var pidfd in ById.Values)
            {
                pidfd.Dispose();
            }
        }
    }

    public override FdTypes Type => FdTypes.Pidfd;

    protected override string InodeName => "pidfd";

    public override string? Problem(DescriptorProbe probe, DumpOptions options)
    {
        try
        {
            return (FdInfo.Read(probe.Pid, probe.Fd).Flags & Pidfd.Thread) != 0
                ? $"fd {probe.Fd}: a pidfd of a single thread (PIDFD_THREAD; not supported, as with CRIU)"
                : null;
        }
        catch (IOException)
        {
            return null; // closed meanwhile
        }
    }

    /// <summary>The pidfds of the tree that name a process outside it, one problem each (for the pre-flight check).</summary>
    /// <param name="tree">The processes of the tree, zombies included.</param>
    public static IEnumerable<(int Pid, string Problem)> Problems(IReadOnlyCollection<int> tree, IEnumerable<DescriptorProbe> descriptors)
    {
        foreach (var probe in descriptors.Where(d => d.IsAnonInode("pidfd")))
        {
            int? target;
            try
            {
                target = PidOf(FdInfo.Read(probe.Pid, probe.Fd));
            }
            catch (IOException)
            {
                continue; // closed meanwhile
            }
            if (target is int pid && pid != Reaped && !tree.Contains(pid))
            {
                yield return (probe.Pid, $"fd {probe.Fd}: a pidfd of process {pid}, which is outside the checkpointed tree");
            }
        }
    }

    public override SavedDescription Saved(ImageSet images, FileEntry file) => new(file.Pidfd.Flags, file.Pidfd.Fown);

    public override FileEntry Dump(DescriptorDump dump)
    {
        var pid = PidOf(dump.Info) ?? throw new CheckpointException(CheckpointErrorKind.Unsupported,
            $"Process {dump.Process.Pid} has a pidfd (fd {dump.Probe.Fd}) whose fdinfo names no process ('Pid:' missing).", dump.Process.Pid);
        if (pid != Reaped && !dump.Session.TreeOrder.Contains(pid))
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"Process {dump.Process.Pid} has a pidfd (fd {dump.Probe.Fd}) of process {pid}, which is outside the checkpointed tree.", dump.Process.Pid);
        }
        var entry = new PidfdEntry
        {
            Id = dump.Id,
            Ino = (uint)dump.Probe.Status.Inode,
            Flags = dump.Flags & ~(uint)O.RDWR,
            Nspid = pid,
            Fown = dump.Owner,
        };
        return new FileEntry { Type = FdTypes.Pidfd, Id = dump.Id, Pidfd = entry };
    }

    public override FileDescriptor Open(RestoreSession session, FileEntry file)
    {
        var saved = file.Pidfd;
        if (saved.Nspid == Reaped)
        {
            return OpenReaped(session, file);
        }
        if (!session.Images.Tree.Any(p => p.Pid == (uint)saved.Nspid))
        {
            var path = Path.Combine(session.Images.Directory, ImageTypes.Files.FileName(null));
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                $"{path}: the pidfd with id {file.Id} names process {saved.Nspid}, which is not in the image.", path);
        }
        return Pidfd.Open(session.Pids.Host(saved.Nspid), (int)saved.Flags & Pidfd.NonBlock);
    }

    // A pidfd of a process that was reaped before the checkpoint.
    private static FileDescriptor OpenReaped(RestoreSession session, FileEntry file)
    {
        var dead = session.State<DeadPidfds>();
        if (!dead.ById.ContainsKey(file.Id))
        {
            // Every pidfd of that same dead process (its pidfs inode) names one process again: open them all now.
            var same = session.Images.Files.Values.Where(f => f.Type == FdTypes.Pidfd && f.Pidfd.Nspid == Reaped && f.Pidfd.Ino == file.Pidfd.Ino);
            int stand = PosixSpawn.Spawn(RestoreHost.SleepProgram, new[] { "sleep", "1000000" }, newSession: true);
            try
            {
                foreach (var other in same)
                {
                    dead.ById[other.Id] = Pidfd.Open(stand, (int)other.Pidfd.Flags & Pidfd.NonBlock);
                }
            }
            finally
            {
                Kill.Send(stand, Native.Interop.Signals.SIGKILL);
                Wait4.Wait(stand, 0);
            }
            session.Log.Detail($"pidfds of the reaped process (pidfs inode {file.Pidfd.Ino}) opened on process {stand}, now killed and reaped");
        }
        dead.ById.Remove(file.Id, out var pidfd);
        return pidfd!;
    }

    // The process a pidfd names, as the engine sees it: -1 when it was reaped; null when fdinfo does not say.
    private static int? PidOf(FdInfo info) =>
        int.TryParse(info.Get("Pid"), System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out int pid) ? pid : null;
}
