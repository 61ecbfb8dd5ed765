namespace CriuPS.Native.Proc;

/// <summary>
/// A fanotify group's fdinfo: "fanotify flags:10 event-flags:0" (its fanotify_init flags and the open flags of event
/// files, hex), then one line per mark: "fanotify ino:4f969 sdev:800013 mflags:0 mask:3b ignored_mask:0
/// fhandle-bytes:8 fhandle-type:1 f_handle:69f9..." on an inode, "fanotify mnt_id:1c mflags:0 mask:3b
/// ignored_mask:0" on a mount, "fanotify sdev:800013 mflags:0 mask:3b ignored_mask:0" on a filesystem.
/// </summary>
public sealed record FanotifyInfo(uint Flags, uint EventFileFlags, IReadOnlyList<FanotifyMarkInfo> Marks)
{
    public static FanotifyInfo Of(FdInfo info)
    {
        var group = info.Records("fanotify flags").FirstOrDefault() ?? throw AnonInodeFdInfo.Missing("fanotify flags");
        var marks = new List<FanotifyMarkInfo>();
        foreach (var f in info.Records("fanotify ino"))
        {
            byte[]? handle = f.TryGetValue("f_handle", out var hex) ? Convert.FromHexString(hex) : null;
            marks.Add(new FanotifyMarkInfo(FanotifyMarkInfo.OnInode, AnonInodeFdInfo.Hex(f, "ino"), (uint)AnonInodeFdInfo.Hex(f, "sdev"), 0,
                (uint)AnonInodeFdInfo.Hex(f, "mflags"), (uint)AnonInodeFdInfo.Hex(f, "mask"), (uint)AnonInodeFdInfo.Hex(f, "ignored_mask"),
                handle is null ? 0 : (int)AnonInodeFdInfo.Hex(f, "fhandle-type"), handle));
        }
        foreach (var f in info.Records("fanotify mnt_id"))
        {
            marks.Add(new FanotifyMarkInfo(FanotifyMarkInfo.OnMount, 0, 0, (int)AnonInodeFdInfo.Hex(f, "mnt_id"),
                (uint)AnonInodeFdInfo.Hex(f, "mflags"), (uint)AnonInodeFdInfo.Hex(f, "mask"), (uint)AnonInodeFdInfo.Hex(f, "ignored_mask"), 0, null));
        }
        foreach (var f in info.Records("fanotify sdev"))
        {
            marks.Add(new FanotifyMarkInfo(FanotifyMarkInfo.OnFilesystem, 0, (uint)AnonInodeFdInfo.Hex(f, "sdev"), 0,
                (uint)AnonInodeFdInfo.Hex(f, "mflags"), (uint)AnonInodeFdInfo.Hex(f, "mask"), (uint)AnonInodeFdInfo.Hex(f, "ignored_mask"), 0, null));
        }
        return new FanotifyInfo((uint)AnonInodeFdInfo.Hex(group, "flags"), (uint)AnonInodeFdInfo.Hex(group, "event-flags"), marks);
    }
}
