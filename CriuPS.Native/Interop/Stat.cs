using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>The parts of stat(2) that identify and describe a file.</summary>
public readonly record struct FileStatus(uint Mode, ulong Device, ulong Inode, ulong Size, ulong RawDevice, uint Uid = 0, uint Gid = 0)
{
    public const uint TypeMask = 0xF000;
    public const uint Fifo = 0x1000, CharDevice = 0x2000, Directory = 0x4000, BlockDevice = 0x6000, Regular = 0x8000, Symlink = 0xA000, Socket = 0xC000;

    public uint Type => Mode & TypeMask;

    public uint RawDeviceMajor => (uint)(((RawDevice >> 8) & 0xfff) | ((RawDevice >> 32) & ~0xfffUL));

    public uint RawDeviceMinor => (uint)((RawDevice & 0xff) | ((RawDevice >> 12) & ~0xffUL));

    /// <summary>stat(2), following symbolic links (so /proc/PID/fd/N gives the open object itself).</summary>
    public static unsafe FileStatus Of(string path)
    {
        var bytes = FileDescriptor.NullTerminated(path);
        stat st;
        fixed (byte* p = bytes)
        {
            if (LibC.stat(p, &st) != 0)
            {
                throw new NativeException("stat", LibC.errno, path);
            }
        }
        return new FileStatus((uint)st.st_mode, (ulong)st.st_dev, (ulong)st.st_ino, (ulong)(long)st.st_size, (ulong)st.st_rdev, (uint)st.st_uid, (uint)st.st_gid);
    }

    /// <summary>lstat(2): the directory entry itself (a symbolic link is not followed); null when there is none.</summary>
    public static unsafe FileStatus? OfEntry(string path)
    {
        var bytes = FileDescriptor.NullTerminated(path);
        stat st;
        fixed (byte* p = bytes)
        {
            if (LibC.lstat(p, &st) != 0)
            {
                int errno = LibC.errno;
                return errno == Errno.ENOENT ? null : throw new NativeException("lstat", errno, path);
            }
        }
        return new FileStatus((uint)st.st_mode, (ulong)st.st_dev, (ulong)st.st_ino, (ulong)(long)st.st_size, (ulong)st.st_rdev, (uint)st.st_uid, (uint)st.st_gid);
    }

    public static unsafe FileStatus Of(FileDescriptor fd)
    {
        stat st;
        if (LibC.fstat(fd.Value, &st) != 0)
        {
            throw new NativeException("fstat", LibC.errno);
        }
        return new FileStatus((uint)st.st_mode, (ulong)st.st_dev, (ulong)st.st_ino, (ulong)(long)st.st_size, (ulong)st.st_rdev, (uint)st.st_uid, (uint)st.st_gid);
    }
}
