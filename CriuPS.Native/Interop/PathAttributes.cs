using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>The owner and the mode of a file named by its path: lchown(2) and chmod(2).</summary>
public static unsafe class PathAttributes
{
    /// <summary>Sets the owner of the file at <paramref name="path"/>, or of the link itself when it is a symbolic link.</summary>
    public static void Lchown(string path, uint uid, uint gid)
    {
        fixed (byte* p = FileDescriptor.NullTerminated(path))
        {
            if (LibC.lchown(p, uid, gid) != 0)
            {
                throw new NativeException("lchown", LibC.errno, path);
            }
        }
    }

    /// <summary>Sets the permission bits (and set-id and sticky bits) of the file at <paramref name="path"/>.</summary>
    public static void Chmod(string path, uint mode)
    {
        fixed (byte* p = FileDescriptor.NullTerminated(path))
        {
            if (LibC.chmod(p, (mode_t)mode) != 0)
            {
                throw new NativeException("chmod", LibC.errno, path);
            }
        }
    }
}
