using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>Calls that add or remove a name in a directory: mkfifo(3) (mknod), mkdir(2), unlink(2), rmdir(2).</summary>
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
        var bytes = FileDescriptor.NullTerminated(path);
        fixed (byte* p = bytes)
        {
            if (LibC.unlink(p) != 0)
            {
                throw new NativeException("unlink", LibC.errno, path);
            }
        }
    }
}
