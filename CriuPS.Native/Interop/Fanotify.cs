namespace CriuPS.Native.Interop;

/// <summary>fanotify_init(2) and fanotify_mark(2).</summary>
public static unsafe class Fanotify
{
    public const uint MarkAdd = 0x1, MarkMount = 0x10, MarkIgnoredMask = 0x20, MarkIgnoredSurviveModify = 0x40, MarkFilesystem = 0x100;
    public const uint MarkEvictable = 0x200, MarkIgnore = 0x400;

    /// <summary>
    /// A new fanotify group with <paramref name="flags"/> (FAN_CLASS_*, FAN_REPORT_*...) and <paramref name="eventFileFlags"/>
    /// for the files its events open, close-on-exec. The group keeps its flags as given (fdinfo shows them), so the
    /// descriptor is made close-on-exec afterwards rather than with FAN_CLOEXEC.
    /// </summary>
    public static FileDescriptor Create(uint flags, uint eventFileFlags)
    {
        var group = new FileDescriptor((int)Syscall.Checked("fanotify_init", SystemCall.FanotifyInit, flags, eventFileFlags));
        Fcntl.Call(group, Fcntl.F_SETFD, Fcntl.FD_CLOEXEC);
        return group;
    }

    /// <summary>fanotify_mark on the object at <paramref name="path"/> (the file, or with FAN_MARK_MOUNT its mount).</summary>
    public static void Mark(FileDescriptor group, uint flags, ulong mask, string path)
    {
        fixed (byte* p = FileDescriptor.NullTerminated(path))
        {
            Syscall.Checked($"fanotify_mark({path}, flags {flags:x}, mask {mask:x})", SystemCall.FanotifyMark, (ulong)group.Value, flags, mask, unchecked((ulong)-100), (ulong)p);
        }
    }
}
