using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>The calling process's working directory: chdir(2) and fchdir(2).</summary>
public static unsafe class WorkingDirectory
{
    /// <summary>Changes into <paramref name="path"/>; returns 0 or the errno.</summary>
    public static int TryChdir(string path)
    {
        fixed (byte* p = FileDescriptor.NullTerminated(path))
        {
            return LibC.chdir(p) == 0 ? 0 : LibC.errno;
        }
    }

    /// <summary>Changes into the directory <paramref name="directory"/> is open on; returns 0 or the errno.</summary>
    public static int TryFchdir(FileDescriptor directory) => LibC.fchdir(directory.Value) == 0 ? 0 : LibC.errno;
}
