using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Digests;
using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>A run of saved pages and where its bytes are: which pagemap level (image directory) and where in its pages file.</summary>
internal readonly record struct PageRun(AddressRange Range, PagemapLevel Source, long FileOffset, bool Lazy)
{
    public string PagesPath => Source.PagesPath;

    /// <summary>Its bytes were left in the source process by a post-copy dump: no pages file holds them.</summary>
    public bool IsLeftBehind => FileOffset < 0;
}

/// <summary>
/// The saved pages of one pagemap (a process's, or a shared memory object's) as restore reads them: every run
/// resolved to the pages file that holds its bytes, through the chain of parent images of incremental dumps (the
/// `parent` link of each directory, as CRIU writes it). A run marked in-parent takes its bytes from the parent's
/// pagemap of the same name, which may itself send part of them further up. The whole chain is opened and checked
/// up front, so that a missing or damaged parent is reported, naming the file, before anything is restored.
/// </summary>
internal sealed class PageChain : IDisposable
{
    /// <summary>CRIU's name for the link from an incremental image directory to its parent.</summary>
    public const string ParentLink = "parent";

    private readonly List<PagemapLevel> levels = new();
    private readonly ImageType pagemapType;
    private readonly string pagemapName;
    private readonly PageVerifier? verifier;

    /// <param name="verifier">Verifies the pages of every level as they are first read (lazy restores, page servers).</param>
    public PageChain(string directory, ImageType pagemapType, string id, PagemapHead head, IEnumerable<PagemapEntry> entries, PageVerifier? verifier = null)
        : this(pagemapType, pagemapType.FileName(id), name => new PagemapLevel(directory, name, head, entries, verifier), verifier)
    {
    }

    private PageChain(ImageType pagemapType, string pagemapName, Func<string, PagemapLevel> top, PageVerifier? verifier)
    {
        this.pagemapType = pagemapType;
        this.pagemapName = pagemapName;
        this.verifier = verifier;
        try
        {
            levels.Add(top(pagemapName));
            var runs = new List<PageRun>(levels[0].Runs.Count);
            foreach (var run in levels[0].Runs)
            {
                if (run.InParent)
                {
                    Resolve(1, run.Range, runs);
                }
                else
                {
                    runs.Add(new PageRun(run.Range, levels[0], run.FileOffset, run.Lazy));
                }
            }
            Runs = runs;
            TotalBytes = runs.Sum(r => (long)r.Range.Length.Value);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Reads the pagemap image <paramref name="id"/> of <paramref name="pagemapType"/> in a directory, with its chain.</summary>
    public static PageChain Open(string directory, ImageType pagemapType, string id) =>
        new(pagemapType, pagemapType.FileName(id), name => PagemapLevel.Read(directory, name, pagemapType), verifier: null);

    /// <summary>Every saved run, in address order, each within one pages file.</summary>
    public IReadOnlyList<PageRun> Runs { get; }

    public long TotalBytes { get; }

    /// <summary>Reads saved bytes at a process address, or null when some of them were not saved.</summary>
    public byte[]? Read(Address start, int length)
    {
        var wanted = new AddressRange(start, start + new ByteCount((ulong)length));
        var data = new byte[length];
        var next = start;
        foreach (var run in Runs.Where(r => r.Range.Overlaps(wanted)))
        {
            var part = run.Range.Intersect(wanted);
            if (part.Start != next || run.IsLeftBehind)
            {
                return null;
            }
            run.Source.Read(run.FileOffset + (long)(part.Start - run.Range.Start).Value,
                data.AsSpan((int)(part.Start - start).Value, (int)part.Length.Value));
            next = part.End;
        }
        return next == wanted.End ? data : null;
    }

    public void Dispose()
    {
        foreach (var level in levels)
        {
            level.Dispose();
        }
    }

    // Finds the bytes of `range`, which level `depth - 1` says are in its parent, from level `depth` upwards.
    private void Resolve(int depth, AddressRange range, List<PageRun> into)
    {
        var child = levels[depth - 1];
        var level = depth < levels.Count ? levels[depth] : OpenParent(child, range);
        var next = range.Start;
        for (int i = SortedRanges.FirstEndingAfter(level.Runs, r => r.Range, range.Start); i < level.Runs.Count && level.Runs[i].Range.Start < range.End; i++)
        {
            var run = level.Runs[i];
            var part = run.Range.Intersect(range);
            if (part.Start != next)
            {
                throw Missing(level, child, new AddressRange(next, part.Start));
            }
            if (run.InParent)
            {
                Resolve(depth + 1, part, into);
            }
            else
            {
                into.Add(new PageRun(part, level, run.FileOffset + (long)(part.Start - run.Range.Start).Value, run.Lazy));
            }
            next = part.End;
        }
        if (next != range.End)
        {
            throw Missing(level, child, new AddressRange(next, range.End));
        }
    }

    // Opens the pagemap of the same name in the parent of `child`, refusing a chain that comes back to itself.
    private PagemapLevel OpenParent(PagemapLevel child, AddressRange needed)
    {
        var link = Path.Combine(child.Directory, ParentLink);
        var parent = ParentDirectory(child.Directory) ?? throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
            $"{child.PagemapPath}: pages at {needed} are in the parent image, but {child.Directory} has no '{ParentLink}' link.", child.PagemapPath,
            "The image is incomplete; take a new checkpoint.");
        if (!System.IO.Directory.Exists(parent))
        {
            throw new CheckpointException(CheckpointErrorKind.ImageNotFound,
                $"The parent image '{parent}' of '{child.Directory}' is missing; pages at {needed} are in it.", parent,
                "Put the parent image back where the 'parent' link points, or restore from a full checkpoint.");
        }
        var identity = Identity(parent);
        if (levels.Any(l => Identity(l.Directory) == identity))
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                $"The chain of parent images loops: {string.Join(" -> ", levels.Select(l => l.Directory).Append(parent))}.", link,
                "Fix the 'parent' links so that each image names an older one.");
        }
        var level = PagemapLevel.Read(parent, pagemapName, pagemapType, verifier);
        levels.Add(level);
        return level;
    }

    /// <summary>Where the parent link of an image directory leads (the final target, as a full path), or null when there is no link.</summary>
    public static string? ParentDirectory(string directory)
    {
        var link = Path.Combine(directory, ParentLink);
        return FileStatus.OfEntry(link)?.Type switch
        {
            null => null,
            FileStatus.Symlink => System.IO.Directory.ResolveLinkTarget(link, returnFinalTarget: true)?.FullName ?? link,
            _ => link, // a directory of that name serves as well (CRIU opens it with openat either way)
        };
    }

    /// <summary>
    /// The directory and every image it builds on, following `parent` links, whether they exist or not (a loop ends
    /// the walk; the restore reports it when it follows the chain).
    /// </summary>
    public static IEnumerable<string> Directories(string directory)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (string? current = directory; current is not null && seen.Add(current); current = ParentDirectory(current))
        {
            yield return current;
        }
    }

    private static (ulong, ulong) Identity(string directory)
    {
        var status = FileStatus.Of(directory);
        return (status.Device, status.Inode);
    }

    private static CheckpointException Missing(PagemapLevel parent, PagemapLevel child, AddressRange gap) =>
        new(CheckpointErrorKind.ImageCorrupt,
            $"{parent.PagemapPath} has no pages at {gap}, which {child.PagemapPath} says are in its parent image.", parent.PagemapPath,
            "The parent image does not belong to this one, or is damaged; restore from a full checkpoint.");
}
