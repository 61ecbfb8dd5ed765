using CriuPS.Engine.Dump;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// epoll instances (eventpoll_file_entry with its eventpoll_tfd_entry list, inside the file entry as CRIU 4
/// writes it): every registration with the fd number it was added under, its events and data. Restore creates
/// the instance in the engine; the registrations are made by the process itself with epoll_ctl once all its
/// descriptors are in place, since epoll keys them by the process's fd numbers. A registration whose fd number
/// the process has closed since cannot be made again, and is refused before anything is frozen.
/// </summary>
internal sealed class EpollInstances : AnonInodeKind
{
    public override FdTypes Type => FdTypes.Eventpoll;

    protected override string InodeName => "eventpoll";

    public override FownEntry? Owner(FileEntry file) => file.Epfd.Fown;

    public override string? Problem(DescriptorProbe probe, DumpOptions options)
    {
        IReadOnlyList<EpollTargetInfo> targets;
        try
        {
            targets = EpollTargetInfo.Of(FdInfo.Read(probe.Pid, probe.Fd));
        }
        catch (IOException)
        {
            return null; // closed meanwhile
        }
        var seen = new Dictionary<int, uint>();
        foreach (var target in targets)
        {
            // Registrations under the same number (the first file closed, another opened there and added) are told
            // apart by their rank among those in fdinfo order, as kcmp's epoll slot counts them.
            uint rank = seen.GetValueOrDefault(target.Fd);
            seen[target.Fd] = rank + 1;
            if (!Kcmp.IsEpollTarget(probe.Pid, probe.Fd, target.Fd, rank))
            {
                return $"fd {probe.Fd}: an epoll instance watching a file it was given as fd {target.Fd}, which the process has closed since (CriuPS can only restore registrations under open fd numbers)";
            }
        }
        return null;
    }

    public override FileEntry Dump(DescriptorDump dump)
    {
        var entry = new EventpollFileEntry { Id = dump.Id, Flags = dump.Flags, Fown = dump.Owner };
        foreach (var target in EpollTargetInfo.Of(dump.Info))
        {
            entry.Tfd.Add(new EventpollTfdEntry
            {
                Id = dump.Id,
                Tfd = (uint)target.Fd,
                Events = target.Events,
                Data = target.Data,
                Dev = target.Device,
                Inode = target.Inode,
                Pos = target.Position,
            });
        }
        return new FileEntry { Type = FdTypes.Eventpoll, Id = dump.Id, Epfd = entry };
    }

    public override FileDescriptor Open(RestoreSession session, FileEntry file) => WithStatusFlags(Epoll.Create(), file.Epfd.Flags);

    public override void AfterInstall(RestoreSession session, RestoringProcess process, FdinfoEntry fd, FileEntry file)
    {
        // Once per instance, however many descriptors or processes share it.
        if (!session.FilesSetUp.Add(file.Id))
        {
            return;
        }
        foreach (var target in file.Epfd.Tfd)
        {
            process.Injection.Scratch.Reset();
            var ev = process.Injection.Scratch.Put(new epoll_event { events = (int)target.Events, data = new epoll_data_t { u64 = target.Data } });
            process.Caller.Checked($"epoll_ctl(fd {fd.Fd}, EPOLL_CTL_ADD, fd {target.Tfd})", SyscallNumber.EpollCtl, fd.Fd, Epoll.CtlAdd, target.Tfd, ev.Value);
        }
        session.Log.Detail($"epoll fd {fd.Fd} of {process.Pid}: {file.Epfd.Tfd.Count} registrations");
    }
}
