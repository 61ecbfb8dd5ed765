using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using Microsoft.Win32.SafeHandles;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// Writes saved contents into a shared memory object the engine made again: with pwrite, or, for an object on
/// hugetlbfs (which has no write), through a shared mapping of the whole object in the engine, which takes the huge
/// pages the writes touch.
/// </summary>
internal abstract class ObjectWriter : IDisposable
{
    public static ObjectWriter For(FileDescriptor writable, ulong size) =>
        HugetlbMemory.PageSizeOfFile($"/proc/self/fd/{writable.Value}") is { } pageSize
            ? new MappedWriter(writable, (size + pageSize - 1) / pageSize * pageSize)
            : new FileWriter(writable);

    public abstract void Write(ReadOnlySpan<byte> data, ulong offset);

    public virtual void Dispose()
    {
    }

    private sealed class FileWriter(FileDescriptor writable) : ObjectWriter
    {
        private readonly SafeFileHandle contents = new(writable.Value, ownsHandle: false);

        public override void Write(ReadOnlySpan<byte> data, ulong offset) => RandomAccess.Write(contents, data, (long)offset);
    }

    private sealed class MappedWriter(FileDescriptor writable, ulong length) : ObjectWriter
    {
        private readonly SharedFileMapping mapping = new(writable, length);

        public override void Write(ReadOnlySpan<byte> data, ulong offset) => mapping.Write(data, offset);

        public override void Dispose() => mapping.Dispose();
    }
}
