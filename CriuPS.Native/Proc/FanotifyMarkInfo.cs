namespace CriuPS.Native.Proc;

/// <summary>
/// One mark of a fanotify group: on an inode (its number, device in the kernel's encoding major &lt;&lt; 20 | minor,
/// and handle, null when the filesystem gives none), on a mount (its id), or on a whole filesystem (its device).
/// </summary>
public sealed record FanotifyMarkInfo(int Kind, ulong Inode, uint Device, int MountId, uint Flags, uint Mask, uint IgnoredMask, int HandleType, byte[]? Handle)
{
    /// <summary>The kinds, numbered as CRIU's mark_type (a filesystem mark has no number there).</summary>
    public const int OnInode = 1, OnMount = 2, OnFilesystem = 3;

    public uint DeviceMajor => Device >> 20;

    public uint DeviceMinor => Device & 0xfffff;
}
