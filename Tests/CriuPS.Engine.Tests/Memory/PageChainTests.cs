using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Tests.Images;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Tests.Memory;

/// <summary>
/// The chain reader of incremental images: runs marked in-parent resolved through `parent` links to the pages file
/// that holds them, whatever the overlaps, and broken chains refused naming the file and the problem.
/// </summary>
public sealed class PageChainTests : IDisposable
{
    private const string Id = "7";
    private static readonly ulong Base = 0x7f0000000000;

    private readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    /// <summary>One run of a pagemap: <paramref name="Count"/> pages from page <paramref name="First"/> (counted from <see cref="Base"/>).</summary>
    private sealed record Run(ulong First, ulong Count, bool InParent = false, bool OldStyle = false, bool LeftBehind = false);

    // The byte every page of `level` holds at page index `page`: tells, after a read, where the bytes came from.
    private static byte Fill(string level, ulong page) => (byte)(level[0] * 31 + (int)page);

    private static Address At(ulong page) => new(Base + (page << Page.Shift));

    // An image directory holding pagemap-7.img and pages-1.img (the present runs back to back), linked to `parent`.
    private string Level(string name, string? parent, params Run[] runs)
    {
        var directory = temp.PathOf(name);
        Directory.CreateDirectory(directory);
        using (var pagemap = ImageWriter.Create(directory, ImageTypes.Pagemap, Id))
        {
            pagemap.WriteEntry(new PagemapHead { PagesId = 1 });
            foreach (var run in runs)
            {
                var entry = new PagemapEntry { Vaddr = At(run.First).Value, CompatNrPages = 0, NrPages = run.Count };
                if (run.OldStyle)
                {
                    entry.InParent = run.InParent;
                }
                else
                {
                    entry.Flags = (uint)(run.InParent ? PagemapFlags.InParent : run.LeftBehind ? PagemapFlags.Lazy : PagemapFlags.Present);
                }
                pagemap.WriteEntry(entry);
            }
        }
        using (var pages = File.Create(Path.Combine(directory, ImageTypes.Pages.FileName("1"))))
        {
            foreach (var run in runs.Where(r => !r.InParent && !r.LeftBehind))
            {
                for (ulong page = run.First; page < run.First + run.Count; page++)
                {
                    pages.Write(Enumerable.Repeat(Fill(name, page), Page.Size).ToArray());
                }
            }
        }
        if (parent is not null)
        {
            File.CreateSymbolicLink(Path.Combine(directory, PageChain.ParentLink), parent);
        }
        return directory;
    }

    private static PageChain Open(string directory) => PageChain.Open(directory, ImageTypes.Pagemap, Id);

    [Fact]
    public void RunsLeftInTheSourceProcessTakeNoBytesOfThePagesFileAndCannotBeReadFromIt()
    {
        // A post-copy dump: lazy, not present: only the held process's page server has these bytes.
        var top = Level("top", null, new Run(0, 2), new Run(2, 3, LeftBehind: true), new Run(5, 2));
        using var chain = Open(top);
        Assert.Equal(new[] { false, true, false }, chain.Runs.Select(r => r.IsLeftBehind));
        Assert.True(chain.Runs[1].Lazy);
        // The run after it reads the bytes that follow the first run in the file.
        Assert.Equal("tt", Sources(chain, 5, 2, "top"));
        Assert.Equal("tt", Sources(chain, 0, 2, "top"));
        Assert.Null(chain.Read(At(2), 3 << Page.Shift));
        Assert.Null(chain.Read(At(1), 2 << Page.Shift));
    }

    // Which level each page of [first, first + count) comes from, read through the chain.
    private static string Sources(PageChain chain, ulong first, ulong count, params string[] levels)
    {
        var data = chain.Read(At(first), (int)(count << Page.Shift));
        Assert.NotNull(data);
        return string.Concat(Enumerable.Range(0, (int)count).Select(i =>
            levels.Single(level => data[i << Page.Shift] == Fill(level, first + (ulong)i))[0]));
    }

    [Fact]
    public void PresentRunsAreReadFromTheirOwnPagesFile()
    {
        using var chain = Open(Level("a", null, new Run(0, 2), new Run(5, 3)));

        Assert.Equal(new[] { (0UL, 2UL, 0L), (5UL, 3UL, 2L << Page.Shift) },
            chain.Runs.Select(r => ((r.Range.Start - At(0)).Pages.Value, r.Range.Pages.Value, r.FileOffset)));
        Assert.Equal(5L << Page.Shift, chain.TotalBytes);
        Assert.Equal("aaa", Sources(chain, 5, 3, "a"));
        Assert.Null(chain.Read(At(1), 2 * Page.Size));
    }

    [Fact]
    public void InParentRunsComeFromTheParent()
    {
        Level("a", null, new Run(0, 8));
        using var chain = Open(Level("b", "../a", new Run(0, 2), new Run(2, 3, InParent: true), new Run(5, 3)));

        Assert.Equal("bbaaabbb", Sources(chain, 0, 8, "a", "b"));
        var fromParent = chain.Runs.Single(r => r.Source.Directory.EndsWith("/a", StringComparison.Ordinal));
        Assert.Equal((At(2), 2L << Page.Shift), (fromParent.Range.Start, fromParent.FileOffset));
        Assert.Equal(8L << Page.Shift, chain.TotalBytes);
    }

    [Fact]
    public void PartialOverlapsAreResolvedAcrossThreeLevels()
    {
        // The grandparent holds pages 2-6, the parent 0-2 and 6-11 and sends 3-5 up, the top sends 0-9 up.
        Level("a", null, new Run(2, 5));
        Level("b", "../a", new Run(0, 3), new Run(3, 3, InParent: true), new Run(6, 6));
        using var chain = Open(Level("c", "../b", new Run(0, 10, InParent: true), new Run(12, 1)));

        Assert.Equal("bbbaaabbbb", Sources(chain, 0, 10, "a", "b", "c"));
        Assert.Equal(new[] { "b", "a", "b", "c" }, chain.Runs.Select(r => Path.GetFileName(r.Source.Directory)));
        Assert.Equal(11L << Page.Shift, chain.TotalBytes);
    }

    [Fact]
    public void OldImagesSayInParentWithTheBooleanField()
    {
        Level("a", null, new Run(0, 4));
        using var chain = Open(Level("b", "../a", new Run(0, 2, InParent: true, OldStyle: true), new Run(2, 2, OldStyle: true)));

        Assert.Equal("aabb", Sources(chain, 0, 4, "a", "b"));
    }

    [Fact]
    public void PagesTheParentLacksAreRefusedNamingItsPagemap()
    {
        var parent = Level("a", null, new Run(0, 2), new Run(3, 1));
        var e = Assert.Throws<CheckpointException>(() => Open(Level("b", "../a", new Run(0, 4, InParent: true))));

        Assert.Equal(CheckpointErrorKind.ImageCorrupt, e.Kind);
        Assert.Equal(Path.Combine(parent, "pagemap-7.img"), e.Target);
        Assert.Contains($"has no pages at {new AddressRange(At(2), At(3))}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnInParentRunWithoutAParentLinkIsRefused()
    {
        var e = Assert.Throws<CheckpointException>(() => Open(Level("b", null, new Run(0, 1, InParent: true))));

        Assert.Equal(CheckpointErrorKind.ImageCorrupt, e.Kind);
        Assert.Contains("has no 'parent' link", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AMissingParentDirectoryIsNotFound()
    {
        var e = Assert.Throws<CheckpointException>(() => Open(Level("b", "../gone", new Run(0, 1, InParent: true))));

        Assert.Equal(CheckpointErrorKind.ImageNotFound, e.Kind);
        Assert.Equal(temp.PathOf("gone"), e.Target);
    }

    [Fact]
    public void ATruncatedParentPagesFileIsRefusedNamingIt()
    {
        var parent = Level("a", null, new Run(0, 4));
        var pages = Path.Combine(parent, "pages-1.img");
        using (var file = File.OpenWrite(pages))
        {
            file.SetLength(3 * Page.Size + 10);
        }
        var e = Assert.Throws<CheckpointException>(() => Open(Level("b", "../a", new Run(0, 4, InParent: true))));

        Assert.Equal(CheckpointErrorKind.ImageCorrupt, e.Kind);
        Assert.Equal(pages, e.Target);
        Assert.Contains("is truncated", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AMissingParentPagemapIsRefusedNamingIt()
    {
        var parent = Level("a", null, new Run(0, 1));
        File.Delete(Path.Combine(parent, "pagemap-7.img"));
        var e = Assert.Throws<CheckpointException>(() => Open(Level("b", "../a", new Run(0, 1, InParent: true))));

        Assert.Equal(CheckpointErrorKind.ImageCorrupt, e.Kind);
        Assert.Equal(Path.Combine(parent, "pagemap-7.img"), e.Target);
    }

    [Fact]
    public void AChainThatLoopsIsRefused()
    {
        Level("a", "../b", new Run(0, 2, InParent: true));
        Level("b", "../a", new Run(0, 2, InParent: true));
        var e = Assert.Throws<CheckpointException>(() => Open(temp.PathOf("a")));

        Assert.Equal(CheckpointErrorKind.ImageCorrupt, e.Kind);
        Assert.Contains("loops", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnImageThatIsItsOwnParentIsRefused()
    {
        var e = Assert.Throws<CheckpointException>(() => Open(Level("a", ".", new Run(0, 2, InParent: true))));

        Assert.Equal(CheckpointErrorKind.ImageCorrupt, e.Kind);
        Assert.Contains("loops", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EntriesOutOfOrderAreRefused()
    {
        var e = Assert.Throws<CheckpointException>(() => Open(Level("a", null, new Run(4, 2), new Run(5, 1))));

        Assert.Equal(CheckpointErrorKind.ImageCorrupt, e.Kind);
        Assert.Contains("address order", e.Message, StringComparison.Ordinal);
    }
}
