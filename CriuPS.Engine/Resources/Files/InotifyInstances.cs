using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// inotify instances (inotify_file_entry with its inotify_wd_entry list): every watch with its wd, mask, and the
/// watched file's inode, device and handle (fh_entry, with the path it had as a hint for CRIU). A watched file that
/// was deleted (a watch keeps its inode only while something holds the file open) is saved as a ghost file. Restore
/// creates the instance in the engine, finds each file through its inode, as CRIU does: the ghost saved for that
/// device and inode, created again, or else the file its handle opens; and adds the watches in wd order, each given
/// its saved wd with INOTIFY_IOC_SETNEXTWD. Events queued and not yet read are not saved.
/// </summary>
internal sealed class InotifyInstances : AnonInodeKind
{
    // What inotify_add_watch takes back of the mask fdinfo shows: the events, IN_EXCL_UNLINK and IN_ONESHOT
    // (older kernels also show internal bits there).
    private const uint AllEvents = 0xfff, ExcludeUnlinked = 0x04000000, OneShot = 0x80000000;
    private const uint RestorableMask = AllEvents | ExcludeUnlinked | OneShot;

    public override FdTypes Type => FdTypes.Inotify;

    protected override string InodeName => "inotify";

    public override SavedDescription Saved(ImageSet images, FileEntry file) => new(file.Ify.Flags, file.Ify.Fown);

    public override string? Problem(DescriptorProbe probe, DumpOptions options)
    {
        IReadOnlyList<InotifyWatchInfo> watches;
        try
        {
            watches = InotifyWatchInfo.Of(FdInfo.Read(probe.Pid, probe.Fd));
        }
        catch (IOException)
        {
            return null; // closed meanwhile
        }
        foreach (var watch in watches)
        {
            using var file = FileHandles.Open(watch.DeviceMajor, watch.DeviceMinor, watch.HandleType, watch.Handle, out var why);
            if (file is null)
            {
                return $"fd {probe.Fd}: an inotify watch (wd {watch.Wd}) on inode {watch.Inode} of device {watch.DeviceMajor}:{watch.DeviceMinor}, a file CriuPS cannot find again by its handle ({why})";
            }
            var link = ProcFiles.ReadLink($"/proc/self/fd/{file.Value}");
            if (GhostFiles.IsDeleted(link) && GhostFiles.Problem($"fd {probe.Fd}: inotify watch (wd {watch.Wd}) on", link, FileStatus.Of($"/proc/self/fd/{file.Value}"), options) is { } problem)
            {
                return problem;
            }
        }
        return null;
    }

    public override FileEntry Dump(DescriptorDump dump)
    {
        int queued = Inotify.QueuedBytes(dump.Copy);
        if (queued > 0)
        {
            dump.Session.Log.Warning($"Process {dump.Probe.Pid}, fd {dump.Probe.Fd}: {queued} bytes of inotify events not yet read are not saved; the restored process will not see them.");
        }
        var entry = new InotifyFileEntry { Id = dump.Id, Flags = dump.Flags, Fown = dump.Owner };
        foreach (var watch in InotifyWatchInfo.Of(dump.Info))
        {
            using var file = FileHandles.Open(watch.DeviceMajor, watch.DeviceMinor, watch.HandleType, watch.Handle, out var why) ?? throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"Process {dump.Probe.Pid} has fd {dump.Probe.Fd}: an inotify watch (wd {watch.Wd}) on a file CriuPS cannot find again by its handle ({why}).", dump.Probe.Pid);
            var found = $"/proc/self/fd/{file.Value}";
            var link = ProcFiles.ReadLink(found);
            bool deleted = GhostFiles.IsDeleted(link);
            if (deleted)
            {
                // Saved as a ghost file, which the restore finds by this watch's device and inode.
                RegularFiles.ForLink(dump.Session, found, O.RDONLY);
                dump.Session.Log.Detail($"process {dump.Probe.Pid}, fd {dump.Probe.Fd}: inotify watch {watch.Wd} is on the deleted '{link}'");
            }
            entry.Wd.Add(new InotifyWdEntry
            {
                Id = dump.Id,
                IIno = watch.Inode,
                Mask = watch.Mask,
                IgnoredMask = watch.IgnoredMask,
                SDev = watch.Device,
                Wd = (uint)watch.Wd,
                // No path for a deleted file: CRIU would open the path before trying the handle.
                FHandle = FileHandles.ToEntry(watch.HandleType, watch.Handle!, deleted ? null : link),
            });
        }
        return new FileEntry { Type = FdTypes.Inotify, Id = dump.Id, Ify = entry };
    }

    public override FileDescriptor Open(RestoreSession session, FileEntry file)
    {
        var saved = file.Ify;
        var inotify = Inotify.Create(0);
        try
        {
            foreach (var watch in saved.Wd.OrderBy(w => w.Wd))
            {
                Watch(session, inotify, watch);
            }
        }
        catch
        {
            inotify.Dispose();
            throw;
        }
        return inotify;
    }

    private static void Watch(RestoreSession session, FileDescriptor inotify, InotifyWdEntry watch)
    {
        var image = Path.Combine(session.Images.Directory, "files.img");
        var handle = FileHandles.FromEntry(watch.FHandle, image);
        uint major = watch.SDev >> 20, minor = watch.SDev & 0xfffff;
        var name = watch.FHandle.HasPath ? $"'{watch.FHandle.Path}'" : $"inode {watch.IIno} of device {major}:{minor}";
        string why = "";
        using var target = GhostFiles.OfInode(session.Images, watch.SDev, watch.IIno) is ({ } deleted, uint ghostId)
            ? GhostFiles.Open(session, deleted, ghostId, O.PATH)
            : FileHandles.Open(major, minor, (int)watch.FHandle.Type, handle, out why) ?? throw new CheckpointException(
            CheckpointErrorKind.ImageIncompatible,
            $"The process watched {name} with inotify (wd {watch.Wd}), and that file cannot be found: {why}.",
            watch.FHandle.HasPath ? watch.FHandle.Path : image,
            "Restore on the machine where the checkpoint was taken, with the watched files still in place.");
        Inotify.SetNextWd(inotify, (int)watch.Wd);
        // The /proc/self/fd link of our O_PATH descriptor leads inotify_add_watch to the file itself.
        int wd = Inotify.AddWatch(inotify, $"/proc/self/fd/{target.Value}", watch.Mask & RestorableMask);
        if (wd != watch.Wd)
        {
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"The inotify watch on {name} came back as wd {wd} instead of {watch.Wd}.", image);
        }
        session.Log.Detail($"inotify watch {wd} on {name}, mask {watch.Mask:x}");
    }
}
