using System.Globalization;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using Microsoft.Win32.SafeHandles;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// The contents of a shared memory object (shared anonymous memory, a memfd) in CRIU's pagemap-shmem-SHMID.img +
/// pages-N.img: runs of pages addressed by their offset in the object. Dump reads the object through a descriptor of
/// its own, skipping holes (SEEK_DATA/SEEK_HOLE) and all-zero pages: both come back as zeros. Restore writes the runs
/// back (<see cref="ObjectWriter"/>), never past the object's size.
/// </summary>
internal static class ShmemPages
{
    private const int ChunkBytes = 1 << 20;

    /// <summary>Saves the contents of an object of <paramref name="size"/> bytes; an empty one has no images (as CRIU).</summary>
    public static void Dump(DumpSession session, FileDescriptor readable, ulong size, ulong shmid)
    {
        if (size == 0)
        {
            return;
        }
        uint pagesId = session.NextPagesId++;
        var entries = new List<PagemapEntry>();
        var pagemap = new PagemapBuilder(entries);
        var contents = new SafeFileHandle(readable.Value, ownsHandle: false);
        var buffer = GC.AllocateUninitializedArray<byte>(ChunkBytes);
        ulong end = Page.AlignUp(size);
        ulong scanned = 0;
        long written = 0;
        using (var pages = session.Output.Create(ImageTypes.Pages.FileName(pagesId)))
        {
            for (ulong? data = Lseek.NextData(readable, 0); data is { } from && from < end;)
            {
                ulong start = Page.AlignDown(from);
                ulong stop = Math.Min(Page.AlignUp(Lseek.NextHole(readable, from)), end);
                for (ulong offset = start; offset < stop; offset += ChunkBytes)
                {
                    int length = (int)Math.Min(ChunkBytes, stop - offset);
                    var chunk = buffer.AsSpan(0, length);
                    // The last page may reach past the end of the object: that part reads as zeros.
                    int read = RandomAccess.Read(contents, chunk, (long)offset);
                    chunk[read..].Clear();
                    written += WriteNonZeroPages(pages, pagemap, chunk, offset);
                    scanned += (ulong)length >> Page.Shift;
                }
                data = stop >= end ? null : Lseek.NextData(readable, stop);
            }
        }
        using (var image = session.CreateImage(ImageTypes.ShmemPagemap, shmid.ToString(CultureInfo.InvariantCulture)))
        {
            image.WriteEntry(new PagemapHead { PagesId = pagesId });
            foreach (var entry in entries)
            {
                image.WriteEntry(entry);
            }
        }
        session.Stats.ShpagesScanned += scanned;
        session.Stats.ShpagesWritten += pagemap.Pages.Value;
        session.Log.Detail($"shared memory {shmid}: {size} bytes, {pagemap.Pages.Value} pages saved in pages-{pagesId}.img ({written} bytes)");
    }

    // Appends the runs of non-zero pages of a chunk at object offset `offset` to the pages file and the pagemap.
    private static long WriteNonZeroPages(Stream pages, PagemapBuilder pagemap, ReadOnlySpan<byte> chunk, ulong offset)
    {
        int count = chunk.Length >> Page.Shift;
        long written = 0;
        for (int i = 0; i < count;)
        {
            if (IsZero(chunk, i))
            {
                i++;
                continue;
            }
            int first = i;
            while (i < count && !IsZero(chunk, i))
            {
                i++;
            }
            pages.Write(chunk.Slice(first << Page.Shift, (i - first) << Page.Shift));
            pagemap.Add(new Address(offset + ((ulong)first << Page.Shift)), new PageCount((ulong)(i - first)), PagemapFlags.Present);
            written += (i - first) << Page.Shift;
        }
        return written;
    }

    private static bool IsZero(ReadOnlySpan<byte> data, int page) => data.Slice(page << Page.Shift, Page.Size).IndexOfAnyExcept((byte)0) < 0;

    /// <summary>Writes the saved contents of object <paramref name="shmid"/> into <paramref name="writable"/>, of <paramref name="size"/> bytes.</summary>
    public static void Restore(RestoreSession session, ulong shmid, FileDescriptor writable, ulong size)
    {
        var directory = session.Images.Directory;
        if (size == 0)
        {
            return;
        }
        var path = Path.Combine(directory, ImageTypes.ShmemPagemap.FileName(shmid.ToString(CultureInfo.InvariantCulture)));
        PagemapHead head;
        var entries = new List<PagemapEntry>();
        try
        {
            using var reader = ImageReader.Open(path, ImageTypes.ShmemPagemap);
            head = reader.ReadEntry<PagemapHead>() ?? throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"{path} is empty.", path);
            while (reader.TryReadEntry<PagemapEntry>(out var entry))
            {
                entries.Add(entry);
            }
        }
        catch (FileNotFoundException)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"{path} is missing: the contents of shared memory object {shmid} ({size} bytes) are not in the image.", path);
        }
        catch (ImageFormatException e)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, e.Message, e.Path, ImageDamage.Action, e);
        }
        using var pages = new PageChain(directory, ImageTypes.ShmemPagemap, shmid.ToString(CultureInfo.InvariantCulture), head, entries, session.PagesVerifiedOnRead);
        using var contents = ObjectWriter.For(writable, size);
        foreach (var run in pages.Runs)
        {
            if (run.Range.End.Value > Page.AlignUp(size))
            {
                throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                    $"{Path.GetFileName(path)}: pages at offset {run.Range.Start} reach past the end of the {size}-byte object.", path);
            }
            for (ulong offset = run.Range.Start.Value; offset < run.Range.End.Value && offset < size; offset += ChunkBytes)
            {
                int length = (int)Math.Min(ChunkBytes, run.Range.End.Value - offset);
                var data = pages.Read(new Address(offset), length)!;
                contents.Write(data.AsSpan(0, (int)Math.Min((ulong)length, size - offset)), offset);
            }
        }
    }
}
