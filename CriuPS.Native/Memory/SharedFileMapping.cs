using CriuPS.Native.Interop;

namespace CriuPS.Native.Memory;

/// <summary>
/// A shared mapping of a whole file in this process: the way to fill an object whose file system has no write
/// (hugetlbfs), since stores into the mapping take the file's pages.
/// </summary>
public sealed unsafe class SharedFileMapping : IDisposable
{
    private readonly ulong address;
    private readonly ulong length;
    private bool unmapped;

    public SharedFileMapping(FileDescriptor file, ulong length)
    {
        address = Mmap.SharedFile(file, length);
        this.length = length;
    }

    /// <summary>Copies <paramref name="data"/> into the file at <paramref name="offset"/>.</summary>
    public void Write(ReadOnlySpan<byte> data, ulong offset)
    {
        ObjectDisposedException.ThrowIf(unmapped, this);
        if (offset + (ulong)data.Length > length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"{data.Length} bytes at {offset} reach past the {length}-byte mapping.");
        }
        data.CopyTo(new Span<byte>((void*)(address + offset), data.Length));
    }

    public void Dispose()
    {
        if (!unmapped)
        {
            unmapped = true;
            Mmap.Munmap(address, length);
        }
    }
}
