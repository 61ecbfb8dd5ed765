using System.Text;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// readlink(2) and readlinkat(2): a symbolic link's target in one system call. FileInfo.LinkTarget wraps it in an object, a path
/// normalisation and a status call, and a dump reads /proc's fd and ns links by the hundred, most of them while the
/// tree is frozen.
/// </summary>
public static class Readlink
{
    // PATH_MAX: no link in /proc, nor a path the kernel resolves, is longer.
    private const int PathMax = 4096;

    /// <summary>The target of the link at <paramref name="path"/>, or null with the errno in <paramref name="errno"/>.</summary>
    public static string? Read(string path, out int errno) => Read(Fcntl.AT_FDCWD, path, out errno);

    /// <summary>readlinkat(2): the target of the link <paramref name="name"/> in an open directory, or null with the errno.</summary>
    public static string? ReadAt(FileDescriptor directory, string name, out int errno) => Read(directory.Value, name, out errno);

    // readlinkat relative to a directory descriptor; AT_FDCWD makes it readlink of a path.
    private static unsafe string? Read(int directory, string name, out int errno)
    {
        var entry = FileDescriptor.NullTerminated(name);
        var target = stackalloc byte[PathMax];
        fixed (byte* p = entry)
        {
            long n = LibC.readlinkat(directory, p, target, PathMax);
            errno = n < 0 ? LibC.errno : 0;
            return n < 0 ? null : Encoding.UTF8.GetString(target, (int)n);
        }
    }
}
