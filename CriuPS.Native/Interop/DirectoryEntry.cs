using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// Calls that add or remove a name in a directory: mkfifo(3) and mknod(2), mkdir(2), link(2), unlink(2), rmdir(2).
/// </summary>
public static unsafe class DirectoryEntry
{
    /// <summary>Creates a FIFO node; returns 0 or the errno.</summary>
    public static int Mkfifo(string path, uint mode)
    {
        var bytes = FileDescriptor.NullTerminated(path);
        fixed (byte* p = bytes)
        {
            return LibC.mkfifo(p, (mode_t)mode) == 0 ? 0 : LibC.errno;
        }
    }

    /// <summary>Creates a device node or FIFO (mknod(2)): <paramref name="mode"/> holds its type and permissions.</summary>
    public static void Mknod(string path, uint mode, ulong device)
    {
        var bytes = FileDescriptor.NullTerminated(path);
        fixed (byte* p = bytes)
        {
            if (LibC.mknod(p, (mode_t)mode, (dev_t)device) != 0)
            {
                throw new NativeException("mknod", LibC.errno, path);
            }
        }
    }

    /// <summary>Gives the file at <paramref name="existing"/> a second name, <paramref name="path"/> (a hard link).</summary>
    public static void Link(string existing, string path)
    {
        fixed (byte* from = FileDescriptor.NullTerminated(existing))
        fixed (byte* to = FileDescriptor.NullTerminated(path))
        {
            if (LibC.link(from, to) != 0)
            {
                throw new NativeException("link", LibC.errno, path);
            }
        }
    }

    /// <summary>Creates a directory; returns 0 or the errno.</summary>
    public static int Mkdir(string path, uint mode)
    {
        var bytes = FileDescriptor.NullTerminated(path);
        fixed (byte* p = bytes)
        {
            return LibC.mkdir(p, (mode_t)mode) == 0 ? 0 : LibC.errno;
        }
    }

    public static void RemoveDirectory(string path)
    {
        var bytes = FileDescriptor.NullTerminated(path);
        fixed (byte* p = bytes)
        {
            if (LibC.rmdir(p) != 0)
            {
                throw new NativeException("rmdir", LibC.errno, path);
            }
        }
    }

    public static void Unlink(string path)
    {
        if (TryUnlink(path) is int errno and not 0)
        {
            throw new NativeException("unlink", errno, path);
        }
    }

    /// <summary>Removes the name, if it is still there (a name already gone is no error).</summary>
    public static void UnlinkIfPresent(string path)
    {
        if (TryUnlink(path) is int errno and not 0 and not Errno.ENOENT)
        {
            throw new NativeException("unlink", errno, path);
        }
    }

    private static int TryUnlink(string path)
    {
        var bytes = FileDescriptor.NullTerminated(path);
        fixed (byte* p = bytes)
        {
            return LibC.unlink(p) == 0 ? 0 : LibC.errno;
        }
    }
}
