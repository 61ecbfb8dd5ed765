using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// fanotify groups (fanotify_file_entry with its fanotify_mark_entry list), as CRIU saves them: the group's
/// fanotify_init flags and event-file flags, and every mark with its flags, mask and ignored mask: a mark on an inode
/// with the file's handle (and the path it had, a hint), a mark on a mount with its mount point. Restore creates the
/// group in the engine and marks each file (found by its handle, as inotify watches) or mount again. Events queued and
/// not yet read, and permission events waiting for an answer, are not saved. Marks on a whole filesystem
/// (FAN_MARK_FILESYSTEM) have no place in CRIU's image and are refused.
/// </summary>
internal sealed class FanotifyGroups : AnonInodeKind
{
    public override FdTypes Type => FdTypes.Fanotify;

    protected override string InodeName => "fanotify";

    public override SavedDescription Saved(ImageSet images, FileEntry file) => new(file.Ffy.Flags, file.Ffy.Fown);

    public override string? Problem(DescriptorProbe probe, DumpOptions options)
    {
        FanotifyInfo group;
        try
        {
            group = FanotifyInfo.Of(FdInfo.Read(probe.Pid, probe.Fd));
        }
        catch (IOException)
        {
            return null; // closed meanwhile
        }
        foreach (var mark in group.Marks)
        {
            if (mark.Kind == FanotifyMarkInfo.OnFilesystem)
            {
                return $"fd {probe.Fd}: a fanotify mark on the whole filesystem of device {mark.DeviceMajor}:{mark.DeviceMinor} (FAN_MARK_FILESYSTEM), which CRIU's image cannot hold";
            }
            if (mark.Kind == FanotifyMarkInfo.OnMount && MountPoint(probe.Pid, mark) is null)
            {
                return $"fd {probe.Fd}: a fanotify mark on mount {mark.MountId}, which process {probe.Pid} does not see";
            }
            if (mark.Kind != FanotifyMarkInfo.OnInode)
            {
                continue;
            }
            using var file = FileHandles.Open(mark.DeviceMajor, mark.DeviceMinor, mark.HandleType, mark.Handle, out var why);
            if (file is null)
            {
                return $"fd {probe.Fd}: a fanotify mark on inode {mark.Inode} of device {mark.DeviceMajor}:{mark.DeviceMinor}, a file CriuPS cannot find again by its handle ({why})";
            }
        }
        return null;
    }

    private static string? MountPoint(int pid, FanotifyMarkInfo mark) => MountInfo.MountPointOf(mark.MountId, $"/proc/{pid}/mountinfo");

    public override FileEntry Dump(DescriptorDump dump)
    {
        var group = FanotifyInfo.Of(dump.Info);
        var entry = new FanotifyFileEntry { Id = dump.Id, Flags = dump.Flags, Fown = dump.Owner, Faflags = group.Flags, Evflags = group.EventFileFlags };
        foreach (var mark in group.Marks)
        {
            var saved = new FanotifyMarkEntry { Id = dump.Id, Mflags = mark.Flags, Mask = mark.Mask, IgnoredMask = mark.IgnoredMask, SDev = mark.Device };
            if (mark.Kind == FanotifyMarkInfo.OnInode)
            {
                using var file = FileHandles.Open(mark.DeviceMajor, mark.DeviceMinor, mark.HandleType, mark.Handle, out var why) ?? throw new CheckpointException(CheckpointErrorKind.Unsupported,
                    $"Process {dump.Probe.Pid} has fd {dump.Probe.Fd}: a fanotify mark on a file CriuPS cannot find again by its handle ({why}).", dump.Probe.Pid);
                saved.Type = MarkType.Inode;
                saved.Ie = new FanotifyInodeMarkEntry
                {
                    IIno = mark.Inode,
                    FHandle = FileHandles.ToEntry(mark.HandleType, mark.Handle!, ProcFiles.ReadLink($"/proc/self/fd/{file.Value}")),
                };
            }
            else
            {
                saved.Type = MarkType.Mount;
                saved.Me = new FanotifyMountMarkEntry { MntId = (uint)mark.MountId };
                var point = MountPoint(dump.Probe.Pid, mark) ?? throw new CheckpointException(CheckpointErrorKind.Unsupported,
                    $"Process {dump.Probe.Pid} has fd {dump.Probe.Fd}: a fanotify mark on mount {mark.MountId}, which it does not see.", dump.Probe.Pid);
                saved.Me.Path = point;
            }
            entry.Mark.Add(saved);
        }
        return new FileEntry { Type = FdTypes.Fanotify, Id = dump.Id, Ffy = entry };
    }

    public override FileDescriptor Open(RestoreSession session, FileEntry file)
    {
        var saved = file.Ffy;
        var group = Fanotify.Create(saved.Faflags, saved.Evflags);
        try
        {
            foreach (var mark in saved.Mark)
            {
                Mark(session, group, mark);
            }
        }
        catch
        {
            group.Dispose();
            throw;
        }
        return group;
    }

    private static void Mark(RestoreSession session, FileDescriptor group, FanotifyMarkEntry mark)
    {
        var image = Path.Combine(session.Images.Directory, "files.img");
        string name;
        FileDescriptor? file = null;
        string path;
        uint kind;
        if (mark.Type == MarkType.Inode && mark.Ie is { } inode)
        {
            uint major = mark.SDev >> 20, minor = mark.SDev & 0xfffff;
            name = inode.FHandle.HasPath ? $"'{inode.FHandle.Path}'" : $"inode {inode.IIno} of device {major}:{minor}";
            file = FileHandles.Open(major, minor, (int)inode.FHandle.Type, FileHandles.FromEntry(inode.FHandle, image), out var why) ?? throw new CheckpointException(
                CheckpointErrorKind.ImageIncompatible, $"The process marked {name} with fanotify, and that file cannot be found: {why}.",
                inode.FHandle.HasPath ? inode.FHandle.Path : image, "Restore on the machine where the checkpoint was taken, with the marked files still in place.");
            // fanotify_mark takes no O_PATH descriptor; the /proc/self/fd link of ours leads it to the file itself.
            path = $"/proc/self/fd/{file.Value}";
            kind = 0;
        }
        else if (mark.Type == MarkType.Mount && mark.Me is { HasPath: true } mount)
        {
            name = $"the mount at {mount.Path}";
            path = mount.Path;
            kind = Fanotify.MarkMount;
        }
        else
        {
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"{image}: a fanotify mark of type {mark.Type} {(mark.Type == MarkType.Mount ? "without its mount point (CRIU's images give the mount id alone)" : "without its file")}, which CriuPS cannot restore.", image);
        }
        using (file)
        {
            // The mask and the ignored mask are set by two calls; the flags kept on the mark go with the call that
            // sets them (FAN_MARK_IGNORED_SURV_MODIFY belongs to the ignored mask).
            uint evictable = mark.Mflags & Fanotify.MarkEvictable;
            try
            {
                if (mark.Mask != 0)
                {
                    Fanotify.Mark(group, Fanotify.MarkAdd | kind | evictable, mark.Mask, path);
                }
                if (mark.IgnoredMask != 0)
                {
                    uint ignore = (mark.Mflags & Fanotify.MarkIgnore) != 0 ? Fanotify.MarkIgnore : Fanotify.MarkIgnoredMask;
                    Fanotify.Mark(group, Fanotify.MarkAdd | kind | evictable | ignore | (mark.Mflags & Fanotify.MarkIgnoredSurviveModify), mark.IgnoredMask, path);
                }
            }
            catch (NativeException e)
            {
                throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"The fanotify mark on {name} cannot be set again: {e.Message}.", image, null, e);
            }
        }
        session.Log.Detail($"fanotify mark on {name}, mask {mark.Mask:x}, ignored {mark.IgnoredMask:x}");
    }
}
