using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>lseek(2): the position of a description, and the data/hole map of sparse files (SEEK_DATA, SEEK_HOLE).</summary>
public static class Lseek
{
    // Tmds.LibC has SEEK_SET but not SEEK_DATA and SEEK_HOLE (linux/fs.h).
    private const int SeekData = 3, SeekHole = 4;

    public static void Set(FileDescriptor fd, ulong position)
    {
        if (LibC.lseek(fd.Value, (long)position, LibC.SEEK_SET) < 0)
        {
            throw new NativeException("lseek", LibC.errno);
        }
    }

    /// <summary>The start of the next run of data at or after <paramref name="offset"/>, or null when only a hole follows.</summary>
    public static ulong? NextData(FileDescriptor fd, ulong offset) => Seek(fd, offset, SeekData);

    /// <summary>The start of the next hole at or after <paramref name="offset"/> (the end of the file counts as one).</summary>
    public static ulong NextHole(FileDescriptor fd, ulong offset) =>
        Seek(fd, offset, SeekHole) ?? throw new NativeException("lseek(SEEK_HOLE)", Errno.ENXIO);

    private static ulong? Seek(FileDescriptor fd, ulong offset, int whence)
    {
        long result = LibC.lseek(fd.Value, (long)offset, whence);
        if (result >= 0)
        {
            return (ulong)result;
        }
        int errno = LibC.errno;
        return errno == Errno.ENXIO ? null : throw new NativeException(whence == SeekData ? "lseek(SEEK_DATA)" : "lseek(SEEK_HOLE)", errno);
    }
}
