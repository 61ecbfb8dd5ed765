using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// epoll instances (eventpoll_file_entry with its eventpoll_tfd_entry list, inside the file entry as CRIU 4
/// writes it): every registration with the fd number it was added under, its events and data. The kernel keys a
/// registration by its file and that number, and keeps it as long as the file lives, even once the process has closed
/// the number (the file kept by a dup, another process, or another file opened at that number since): such a
/// registration is saved with the file it is on (found with kcmp's KCMP_EPOLL_TFD among the tree's descriptors, as
/// CRIU's eventpoll.c finds it). Restore creates the instance in the engine; the registrations are made by the process
/// itself with epoll_ctl once all its descriptors are in place, a closed number's file put there just for its
/// registration. A registration whose file no descriptor of the tree holds is refused before anything is frozen.
/// </summary>
internal sealed class EpollInstances : AnonInodeKind
{
    public override FdTypes Type => FdTypes.Eventpoll;

    protected override string InodeName => "eventpoll";

    public override SavedDescription Saved(ImageSet images, FileEntry file) => new(file.Epfd.Flags, file.Epfd.Fown);

    /// <summary>A registration saved under a number that no longer names its file, with what finds that file again.</summary>
    private sealed record ClosedTarget(EventpollTfdEntry Entry, int Pid, int Epfd, uint Rank);

    /// <summary>Registrations whose file is found once every descriptor of the tree is saved.</summary>
    private sealed class ClosedTargets
    {
        public List<ClosedTarget> Pending { get; } = new();
    }

    // Each registration of an instance with its rank among those under the same number: registrations under one
    // number (the first file closed, another opened there and added) are told apart by that rank in fdinfo order, as
    // kcmp's epoll slot counts them.
    private static IEnumerable<(EpollTargetInfo Target, uint Rank)> Ranked(IEnumerable<EpollTargetInfo> targets)
    {
        var seen = new Dictionary<int, uint>();
        foreach (var target in targets)
        {
            uint rank = seen.GetValueOrDefault(target.Fd);
            seen[target.Fd] = rank + 1;
            yield return (target, rank);
        }
    }

    /// <summary>
    /// The registrations of the tree's epoll instances that cannot be saved, with the process each is in: those on a file
    /// that the process closed and that no descriptor of the tree holds any more.
    /// </summary>
    public static IEnumerable<(int Pid, string Problem)> Problems(IReadOnlyList<DescriptorProbe> descriptors)
    {
        foreach (var epoll in descriptors.Where(d => d.IsAnonInode("eventpoll")))
        {
            IReadOnlyList<EpollTargetInfo> targets;
            try
            {
                targets = EpollTargetInfo.Of(FdInfo.Read(epoll.Pid, epoll.Fd));
            }
            catch (IOException)
            {
                continue; // closed meanwhile
            }
            foreach (var (target, rank) in Ranked(targets))
            {
                if (Kcmp.IsEpollTarget(epoll.Pid, epoll.Fd, target.Fd, rank))
                {
                    continue;
                }
                bool held = descriptors.Any(d => d.Status.Inode == target.Inode && Kcmp.IsEpollTarget(d.Pid, d.Fd, epoll.Pid, epoll.Fd, target.Fd, rank));
                if (!held)
                {
                    yield return (epoll.Pid, $"fd {epoll.Fd}: an epoll instance watching a file it was given as fd {target.Fd}, which the process has closed since, and which no descriptor of the tree holds any more (a process outside the tree or a memory mapping keeps it)");
                }
            }
        }
    }

    public override FileEntry Dump(DescriptorDump dump)
    {
        var entry = new EventpollFileEntry { Id = dump.Id, Flags = dump.Flags, Fown = dump.Owner };
        int pid = dump.Probe.Pid, epfd = dump.Probe.Fd;
        foreach (var (target, rank) in Ranked(EpollTargetInfo.Of(dump.Info)))
        {
            var registration = new EventpollTfdEntry
            {
                Id = dump.Id,
                Tfd = (uint)target.Fd,
                Events = target.Events,
                Data = target.Data,
                Dev = target.Device,
                Inode = target.Inode,
                Pos = target.Position,
            };
            entry.Tfd.Add(registration);
            if (!Kcmp.IsEpollTarget(pid, epfd, target.Fd, rank))
            {
                dump.Session.State<ClosedTargets>().Pending.Add(new ClosedTarget(registration, pid, epfd, rank));
            }
        }
        return new FileEntry { Type = FdTypes.Eventpoll, Id = dump.Id, Epfd = entry };
    }

    /// <summary>
    /// Once every descriptor of the tree is saved: the file of each registration whose number the process closed, found
    /// among the descriptors of the tree (its own process's first).
    /// </summary>
    public static void ResolveClosedTargets(DumpSession session)
    {
        foreach (var closed in session.State<ClosedTargets>().Pending)
        {
            var holder = session.Processes.OrderBy(p => p.Pid == closed.Pid ? 0 : 1)
                .SelectMany(p => p.FileDescriptors.Select(fd => (p.Pid, Fd: fd)))
                .FirstOrDefault(c => Kcmp.IsEpollTarget(c.Pid, (int)c.Fd.Fd, closed.Pid, closed.Epfd, (int)closed.Entry.Tfd, closed.Rank));
            if (holder.Fd is null)
            {
                throw new CheckpointException(CheckpointErrorKind.Unsupported,
                    $"Process {closed.Pid} has fd {closed.Epfd}: an epoll instance watching a file it was given as fd {closed.Entry.Tfd}, which the process has closed since, and which no descriptor of the tree holds any more.", closed.Pid);
            }
            closed.Entry.CriupsFileId = holder.Fd.Id;
            session.Log.Detail($"process {closed.Pid}: epoll fd {closed.Epfd} watches as fd {closed.Entry.Tfd}, closed since, the file of fd {holder.Fd.Fd} of process {holder.Pid}");
        }
    }

    public override FileDescriptor Open(RestoreSession session, FileEntry file) => Epoll.Create();

    public override void AfterInstall(RestoreSession session, RestoringProcess process, FdinfoEntry fd, FileEntry file)
    {
        // Once per instance, however many descriptors or processes share it.
        if (!session.FilesSetUp.Add(file.Id))
        {
            return;
        }
        foreach (var target in file.Epfd.Tfd)
        {
            if (target.HasCriupsFileId)
            {
                ClosedTargetRegistration.Add(session, process, fd, target);
                continue;
            }
            process.Injection.Scratch.Reset();
            var ev = process.Injection.Scratch.Put(Event(target));
            process.Caller.Checked($"epoll_ctl(fd {fd.Fd}, EPOLL_CTL_ADD, fd {target.Tfd})", RemoteCall.EpollAdd((int)fd.Fd, (int)target.Tfd, ev));
        }
        session.Log.Detail($"epoll fd {fd.Fd} of {process.Pid}: {file.Epfd.Tfd.Count} registrations");
    }

    public static epoll_event Event(EventpollTfdEntry target) => new() { events = (int)target.Events, data = new epoll_data_t { u64 = target.Data } };
}
