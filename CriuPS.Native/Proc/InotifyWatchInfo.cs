namespace CriuPS.Native.Proc;

/// <summary>
/// One watch of an inotify fdinfo ("inotify wd:2 ino:35a sdev:fe00000 mask:2 ignored_mask:0 fhandle-bytes:8
/// fhandle-type:1 f_handle:5a03000000000000"). <see cref="Device"/> is in the kernel's encoding (major &lt;&lt; 20 |
/// minor); <see cref="Handle"/> is null when the filesystem gives no file handles.
/// </summary>
public sealed record InotifyWatchInfo(int Wd, ulong Inode, uint Device, uint Mask, uint IgnoredMask, int HandleType, byte[]? Handle)
{
    public uint DeviceMajor => Device >> 20;

    public uint DeviceMinor => Device & 0xfffff;

    public static IReadOnlyList<InotifyWatchInfo> Of(FdInfo info) => info.Records("inotify wd").Select(Parse).ToList();

    private static InotifyWatchInfo Parse(IReadOnlyDictionary<string, string> f)
    {
        byte[]? handle = null;
        int type = 0;
        if (f.TryGetValue("f_handle", out var hex))
        {
            handle = Convert.FromHexString(hex);
            type = (int)AnonInodeFdInfo.Hex(f, "fhandle-type");
            if ((ulong)handle.Length != AnonInodeFdInfo.Hex(f, "fhandle-bytes"))
            {
                throw new InvalidDataException($"fdinfo: inotify wd {f["wd"]} has a handle of {handle.Length} bytes, not fhandle-bytes:{f["fhandle-bytes"]}");
            }
        }
        return new InotifyWatchInfo(
            (int)AnonInodeFdInfo.Hex(f, "wd"), AnonInodeFdInfo.Hex(f, "ino"), (uint)AnonInodeFdInfo.Hex(f, "sdev"),
            (uint)AnonInodeFdInfo.Hex(f, "mask"), (uint)AnonInodeFdInfo.Hex(f, "ignored_mask"), type, handle);
    }
}
