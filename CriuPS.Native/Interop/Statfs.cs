namespace CriuPS.Native.Interop;

/// <summary>statfs(2): which kind of file system a file lives on.</summary>
public static unsafe class Statfs
{
    public const long HugetlbfsMagic = 0x958458f6, MqueueMagic = 0x19800202;

    /// <summary>The f_type of the file system of <paramref name="path"/> (following links, so /proc/PID/fd/N gives the open file's).</summary>
    public static long FileSystemType(string path) => Query(path).Type;

    /// <summary>f_type and f_bsize of the file system of <paramref name="path"/>; on hugetlbfs f_bsize is its huge page size.</summary>
    public static (long Type, long BlockSize) Query(string path)
    {
        var bytes = FileDescriptor.NullTerminated(path);
        // struct statfs of x86-64 is 120 bytes; f_type comes first, f_bsize second.
        long* buffer = stackalloc long[16];
        fixed (byte* p = bytes)
        {
            Syscall.Checked("statfs", SystemCall.Statfs, (ulong)p, (ulong)buffer);
        }
        return (buffer[0], buffer[1]);
    }
}
