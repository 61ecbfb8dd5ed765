using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>tee(2): copies bytes queued in one pipe into another without consuming them.</summary>
public static class Tee
{
    private const uint SpliceNonBlock = 2;

    /// <summary>Copies up to <paramref name="length"/> bytes without waiting: the bytes copied, or minus the errno (-EAGAIN: none queued).</summary>
    public static long TryCopy(FileDescriptor from, FileDescriptor to, int length)
    {
        long copied = (long)LibC.tee(from.Value, to.Value, (size_t)(ulong)length, SpliceNonBlock);
        return copied < 0 ? -LibC.errno : copied;
    }
}
