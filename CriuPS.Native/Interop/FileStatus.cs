using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>The parts of stat(2) that identify and describe a file.</summary>
public readonly record struct FileStatus(uint Mode, ulong Device, ulong Inode, ulong Size, ulong RawDevice)
{
    public const uint TypeMask = 0xF000;
    public const uint Fifo = 0x1000, CharDevice = 0x2000, Directory = 0x4000, BlockDevice = 0x6000, Regular = 0x8000, Symlink = 0xA000, Socket = 0xC000;

    public uint Type => Mode & TypeMask;

    public uint RawDeviceMajor => (uint)(((RawDevice >> 8) & 0xfff) | ((RawDevice >> 32) & ~0xfffUL));

    public uint RawDeviceMinor => (uint)((RawDevice & 0xff) | ((RawDevice >> 12) & ~0xffUL));

    public uint DeviceMajor => (uint)(((Device >> 8) & 0xfff) | ((Device >> 32) & ~0xfffUL));

    public uint DeviceMinor => (uint)((Device & 0xff) | ((Device >> 12) & ~0xffUL));

    public uint Uid { get; init; }

    public uint Gid { get; init; }

    /// <summary>The space the file takes on its file system (st_blocks in bytes; less than the size for sparse files).</summary>
    public ulong AllocatedBytes { get; init; }

    /// <summary>Last access, in nanoseconds since the epoch.</summary>
    public long AccessTimeNs { get; init; }

    /// <summary>Last modification, in nanoseconds since the epoch.</summary>
    public long ModifyTimeNs { get; init; }

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
        return From(st);
    }

    /// <summary>
    /// fstatat(2) of the entry <paramref name="name"/> of an open directory, following a symbolic link as stat does
    /// (newfstatat, which Tmds.LibC does not bind; the kernel's struct stat is glibc's on x86-64).
    /// </summary>
    public static unsafe FileStatus At(FileDescriptor directory, string name)
    {
        var bytes = FileDescriptor.NullTerminated(name);
        stat st;
        fixed (byte* p = bytes)
        {
            long result = Syscall.Raw(Arch.SystemCall.Newfstatat, (ulong)directory.Value, (ulong)p, (ulong)&st, 0);
            if (result < 0)
            {
                throw new NativeException("fstatat", (int)-result, name);
            }
        }
        return From(st);
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
        return From(st);
    }

    /// <summary>lstat(2): the link itself. The mode of a /proc/PID/map_files link tells how its file was opened (0600: read-write).</summary>
    public static FileStatus OfLink(string path) => OfEntry(path) ?? throw new NativeException("lstat", Errno.ENOENT, path);

    public static unsafe FileStatus Of(FileDescriptor fd)
    {
        stat st;
        if (LibC.fstat(fd.Value, &st) != 0)
        {
            throw new NativeException("fstat", LibC.errno);
        }
        return From(st);
    }

    private static FileStatus From(in stat st) =>
        new((uint)st.st_mode, (ulong)st.st_dev, (ulong)st.st_ino, (ulong)(long)st.st_size, (ulong)st.st_rdev)
        {
            Uid = (uint)st.st_uid,
            Gid = (uint)st.st_gid,
            AllocatedBytes = (ulong)(long)st.st_blocks * 512,
            AccessTimeNs = (long)st.st_atim.tv_sec * 1_000_000_000 + (long)st.st_atim.tv_nsec,
            ModifyTimeNs = (long)st.st_mtim.tv_sec * 1_000_000_000 + (long)st.st_mtim.tv_nsec,
        };
}
