using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Digests;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Privileges;
using CriuPS.Native.Memory;
using Microsoft.Win32.SafeHandles;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>One entry of a pagemap: a run of pages whose bytes are in the pages file (at an offset) or in the parent image.</summary>
internal readonly record struct PagemapRun(AddressRange Range, bool InParent, long FileOffset, bool Lazy);

/// <summary>
/// One image directory's pagemap (of a process, or of a shared memory object) read against its pages file: where
/// the bytes of each run are, and which runs are in the parent image. Checks that the entries are in address order
/// without overlaps and that the pages file holds every byte they list.
/// </summary>
internal sealed class PagemapLevel : IDisposable
{
    private readonly SafeFileHandle? file;
    private readonly VerifiedPagesFile? verified;

    /// <param name="verifier">For a lazy restore or a page server: verifies each block of the pages file when first read.</param>
    public PagemapLevel(string directory, string pagemapName, PagemapHead head, IEnumerable<PagemapEntry> entries, PageVerifier? verifier = null)
    {
        Directory = directory;
        PagemapPath = Path.Combine(directory, pagemapName);
        PagesPath = Path.Combine(directory, ImageTypes.Pages.FileName(head.PagesId));
        long offset = 0;
        var runs = new List<PagemapRun>();
        foreach (var entry in entries)
        {
            var range = entry.Range();
            if (runs.Count > 0 && range.Start < runs[^1].Range.End)
            {
                throw Corrupt(PagemapPath, $"{PagemapPath}: the entry at {range.Start} overlaps or comes before the one at {runs[^1].Range.Start}; pagemap entries must be in address order.");
            }
            bool inParent = entry.IsInParent();
            // Pages left in the source process (a post-copy dump) are in no pages file: only a page server has them.
            bool inFile = !inParent && !entry.IsLeftBehind();
            runs.Add(new PagemapRun(range, inParent, inFile ? offset : -1, ((PagemapFlags)entry.Flags & PagemapFlags.Lazy) != 0));
            if (inFile)
            {
                offset += (long)range.Length.Value;
            }
        }
        Runs = runs;
        if (offset == 0)
        {
            return; // nothing to read here: the pages file may be absent
        }
        try
        {
            file = File.OpenHandle(PagesPath, FileMode.Open, FileAccess.Read);
        }
        catch (FileNotFoundException)
        {
            throw Corrupt(PagesPath, $"{PagesPath} is missing (its pagemap lists {offset} bytes of pages).");
        }
        catch (UnauthorizedAccessException e)
        {
            throw PathAccess.Denied(PagesPath, "the pages image", inner: e);
        }
        long length = RandomAccess.GetLength(file);
        if (length < offset)
        {
            file.Dispose();
            throw Corrupt(PagesPath, $"{PagesPath} is truncated: {length} bytes, but its pagemap lists {offset} bytes of pages.");
        }
        if (length > offset)
        {
            // A checkpoint writes exactly the pages its pagemap lists: a run shortened or left out would move the bytes
            // of every run after it to the wrong addresses.
            file.Dispose();
            throw Corrupt(PagesPath, $"{PagesPath} has {length} bytes, more than the {offset} bytes of pages its pagemap lists: runs are missing from {PagemapPath} or shortened, or the pages file was added to.");
        }
        verified = verifier?.Find(PagesPath);
    }

    /// <summary>Reads a parent image's pagemap of the same name.</summary>
    public static PagemapLevel Read(string directory, string pagemapName, ImageType type, PageVerifier? verifier = null)
    {
        var path = Path.Combine(directory, pagemapName);
        try
        {
            using var reader = ImageReader.Open(path, type);
            var head = reader.ReadEntry<PagemapHead>() ?? throw Corrupt(path, $"{path} is empty.");
            var entries = new List<PagemapEntry>();
            while (reader.TryReadEntry<PagemapEntry>(out var entry))
            {
                entries.Add(entry);
            }
            return new PagemapLevel(directory, pagemapName, head, entries, verifier);
        }
        catch (FileNotFoundException)
        {
            throw Corrupt(path, $"{path} is missing: the image that names this directory as its parent has pages in it.");
        }
        catch (ImageFormatException e)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, e.Message, e.Path, ImageDamage.Action, e);
        }
    }

    public string Directory { get; }

    public string PagemapPath { get; }

    public string PagesPath { get; }

    /// <summary>Every entry, in address order.</summary>
    public IReadOnlyList<PagemapRun> Runs { get; }

    public void Read(long fileOffset, Span<byte> destination)
    {
        Verify(fileOffset, destination.Length);
        RandomAccess.Read(file!, destination, fileOffset);
    }

    /// <summary>
    /// Makes sure the pages file's bytes at [<paramref name="fileOffset"/>, +<paramref name="length"/>) are as written,
    /// where this level verifies as it reads (otherwise the whole image was verified before the restore began).
    /// </summary>
    public void Verify(long fileOffset, long length)
    {
        if (file is not null)
        {
            verified?.Verify(file, fileOffset, length);
        }
    }

    public void Dispose() => file?.Dispose();

    private static CheckpointException Corrupt(string path, string message) =>
        new(CheckpointErrorKind.ImageCorrupt, message, path, ImageDamage.Action);
}
