using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Memory;
using Microsoft.Win32.SafeHandles;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>One saved run of pages and where its bytes are in the pages file.</summary>
internal readonly record struct PageRun(AddressRange Range, long FileOffset, bool Lazy);

/// <summary>
/// A process's pagemap read against its pages file: each present run with its offset in pages-N.img (the file
/// holds the runs back to back, in pagemap order). Checks up front that the file is as long as the pagemap says.
/// </summary>
internal sealed class PagesFile : IDisposable
{
    private readonly SafeFileHandle file;

    public PagesFile(string directory, PagemapHead head, IEnumerable<PagemapEntry> entries)
    {
        Path = System.IO.Path.Combine(directory, $"pages-{head.PagesId}.img");
        long offset = 0;
        var runs = new List<PageRun>();
        foreach (var entry in entries)
        {
            var flags = (PagemapFlags)entry.Flags;
            ulong pages = entry.HasNrPages ? entry.NrPages : entry.CompatNrPages;
            if (entry.InParent || (flags & PagemapFlags.InParent) != 0)
            {
                throw new CheckpointException(
                    CheckpointErrorKind.ImageIncompatible,
                    $"{System.IO.Path.GetFileName(Path)}: pages at 0x{entry.Vaddr:x} are in a parent image, and incremental images are not supported yet.",
                    Path);
            }
            var start = new Address(entry.Vaddr);
            var range = new AddressRange(start, start + new PageCount(pages).Bytes);
            runs.Add(new PageRun(range, offset, (flags & PagemapFlags.Lazy) != 0));
            offset += (long)new PageCount(pages).Bytes.Value;
        }
        Runs = runs;
        TotalBytes = offset;
        try
        {
            file = File.OpenHandle(Path, FileMode.Open, FileAccess.Read);
        }
        catch (FileNotFoundException)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"{Path} is missing (its pagemap lists {offset} bytes of pages).", Path);
        }
        long length = RandomAccess.GetLength(file);
        if (length < offset)
        {
            file.Dispose();
            throw new CheckpointException(
                CheckpointErrorKind.ImageCorrupt,
                $"{System.IO.Path.GetFileName(Path)} is truncated: {length} bytes, but its pagemap lists {offset} bytes of pages.",
                Path);
        }
    }

    public string Path { get; }

    public IReadOnlyList<PageRun> Runs { get; }

    public long TotalBytes { get; }

    /// <summary>Reads saved bytes at a process address from the pages file, or null when they were not saved.</summary>
    public byte[]? Read(Address start, int length)
    {
        var wanted = new AddressRange(start, start + new ByteCount((ulong)length));
        foreach (var run in Runs)
        {
            if (run.Range.Start <= wanted.Start && wanted.End <= run.Range.End)
            {
                var data = new byte[length];
                RandomAccess.Read(file, data, run.FileOffset + (long)(wanted.Start - run.Range.Start).Value);
                return data;
            }
        }
        return null;
    }

    public void Dispose() => file.Dispose();
}
