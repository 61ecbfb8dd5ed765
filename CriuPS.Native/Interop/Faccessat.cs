using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>faccessat(2) with AT_EACCESS: whether this process, with its effective ids and capabilities, may use a path.</summary>
public static unsafe class Faccessat
{
    public const int Read = 4, Write = 2, Search = 1;

    /// <summary>0 when every access in <paramref name="mode"/> is allowed, else the errno (EACCES, ENOENT...).</summary>
    public static int Check(string path, int mode)
    {
        fixed (byte* p = FileDescriptor.NullTerminated(path))
        {
            return LibC.faccessat(Fcntl.AT_FDCWD, p, mode, LibC.AT_EACCESS) == 0 ? 0 : LibC.errno;
        }
    }
}
