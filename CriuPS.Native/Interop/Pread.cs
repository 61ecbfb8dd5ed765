using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>pread(2): a read at an offset, which leaves the description's position alone.</summary>
public static unsafe class Pread
{
    /// <summary>
    /// One pread of up to <paramref name="buffer"/>'s length at <paramref name="offset"/>: the bytes read (fewer at
    /// the end of the file, or wherever the file stops a read short) and the errno when it failed (then -1 bytes).
    /// </summary>
    public static (long Bytes, int Errno) Read(FileDescriptor fd, Span<byte> buffer, ulong offset)
    {
        fixed (byte* p = buffer)
        {
            long n = (long)LibC.pread(fd.Value, p, (size_t)(ulong)buffer.Length, (long)offset);
            return (n, n < 0 ? LibC.errno : 0);
        }
    }
}
