using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>Calls that set the attributes of an open file's inode: fchown(2), fchmod(2), futimens(2), ftruncate(2).</summary>
public static unsafe class Inode
{
    public static void Fchown(FileDescriptor fd, uint uid, uint gid) => Check(LibC.fchown(fd.Value, uid, gid), "fchown");

    public static void Fchmod(FileDescriptor fd, uint mode) => Check(LibC.fchmod(fd.Value, (mode_t)mode), "fchmod");

    public static void Ftruncate(FileDescriptor fd, ulong size) => Check(LibC.ftruncate(fd.Value, (long)size), "ftruncate");

    /// <summary>Sets the access and modification times, in nanoseconds since the epoch.</summary>
    public static void Futimens(FileDescriptor fd, long accessNs, long modifyNs)
    {
        timespec* times = stackalloc timespec[2];
        times[0] = new timespec { tv_sec = (time_t)(accessNs / 1_000_000_000), tv_nsec = (long_t)(accessNs % 1_000_000_000) };
        times[1] = new timespec { tv_sec = (time_t)(modifyNs / 1_000_000_000), tv_nsec = (long_t)(modifyNs % 1_000_000_000) };
        Check(LibC.futimens(fd.Value, times), "futimens");
    }

    private static void Check(int result, string call)
    {
        if (result != 0)
        {
            throw new NativeException(call, LibC.errno);
        }
    }
}
