using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>inotify_init1(2), inotify_add_watch(2) and the inotify ioctls.</summary>
public static unsafe class Inotify
{
    // _IOW('I', 0, int): the wd the next new watch gets (CONFIG_CHECKPOINT_RESTORE).
    private const int SetNextWdRequest = 0x40044900;

    public static FileDescriptor Create(int flags) =>
        new((int)Syscall.Checked("inotify_init1", SystemCall.InotifyInit1, (ulong)(flags | O.CLOEXEC)));

    /// <summary>Watches the file at <paramref name="path"/>; returns the watch descriptor (wd).</summary>
    public static int AddWatch(FileDescriptor inotify, string path, uint mask)
    {
        fixed (byte* p = FileDescriptor.NullTerminated(path))
        {
            return (int)Syscall.Checked($"inotify_add_watch({path})", SystemCall.InotifyAddWatch, (ulong)inotify.Value, (ulong)p, mask);
        }
    }

    /// <summary>Makes the next new watch get <paramref name="wd"/> (the kernel otherwise hands out wds in increasing order).</summary>
    public static void SetNextWd(FileDescriptor inotify, int wd)
    {
        if (LibC.ioctl(inotify.Value, SetNextWdRequest, wd) != 0)
        {
            throw new NativeException("ioctl(INOTIFY_IOC_SETNEXTWD)", LibC.errno, $"wd {wd}");
        }
    }

    /// <summary>The bytes of events queued and not yet read (FIONREAD).</summary>
    public static int QueuedBytes(FileDescriptor inotify)
    {
        int bytes;
        if (LibC.ioctl(inotify.Value, LibC.FIONREAD, &bytes) != 0)
        {
            throw new NativeException("ioctl(FIONREAD)", LibC.errno);
        }
        return bytes;
    }
}
