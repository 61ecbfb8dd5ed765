using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Tests.Images;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Tests.Memory;

/// <summary>
/// What a child changes in an area it inherited copy-on-write: the pages whose saved bytes differ from its forker's
/// (or that the forker has not) are written from the child's own pages file, the forker's pages the child has not
/// are dropped, and every other page is left shared.
/// </summary>
public sealed class InheritedPagesTests : IDisposable
{
    private const string Id = "7";
    private static readonly ulong Base = 0x7f0000000000;

    private readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    private static Address At(ulong page) => new(Base + (page << Page.Shift));

    private static AddressRange Pages(ulong first, ulong end) => new(At(first), At(end));

    // An image directory whose pagemap lists the pages [first, end) of each run, page p holding content(p) in every byte.
    private PageChain Image(string name, Func<ulong, byte> content, params (ulong First, ulong End)[] runs)
    {
        var directory = temp.PathOf(name);
        Directory.CreateDirectory(directory);
        using (var pagemap = ImageWriter.Create(directory, ImageTypes.Pagemap, Id))
        {
            pagemap.WriteEntry(new PagemapHead { PagesId = 1 });
            foreach (var (first, end) in runs)
            {
                pagemap.WriteEntry(new PagemapEntry { Vaddr = At(first).Value, CompatNrPages = 0, NrPages = end - first, Flags = (uint)PagemapFlags.Present });
            }
        }
        using (var pages = File.Create(Path.Combine(directory, ImageTypes.Pages.FileName("1"))))
        {
            foreach (var (first, end) in runs)
            {
                for (ulong page = first; page < end; page++)
                {
                    pages.Write(Enumerable.Repeat(content(page), Page.Size).ToArray());
                }
            }
        }
        return PageChain.Open(directory, ImageTypes.Pagemap, Id);
    }

    // The first byte of each page a run's place in its pages file holds.
    private static byte[] FirstBytes(PageRun run) =>
        Enumerable.Range(0, (int)run.Range.Pages.Value).Select(i =>
        {
            var page = new byte[Page.Size];
            run.Source.Read(run.FileOffset + ((long)i << Page.Shift), page);
            return page[0];
        }).ToArray();

    [Fact]
    public void WritesOnlyThePagesThatDifferAndDropsThoseTheChildHasNot()
    {
        // The forker has pages 2..9, the child 0..7 and 12..13; they differ in pages 4 and 5.
        using var forker = Image("forker", page => (byte)(page + 1), (2, 10));
        using var child = Image("child", page => (byte)(page is 4 or 5 ? 0xC0 + page : page + 1), (0, 8), (12, 14));
        var area = Pages(0, 16);

        var (write, discard) = InheritedPages.Compare(InheritedPages.Within(child, area), InheritedPages.Within(forker, area));

        Assert.Equal(new[] { Pages(0, 2), Pages(4, 6), Pages(12, 14) }, write.Select(r => r.Range));
        Assert.All(write, run => Assert.Equal(child.Runs[0].Source, run.Source));
        Assert.Equal(new byte[] { 1, 2 }, FirstBytes(write[0]));
        Assert.Equal(new byte[] { 0xC4, 0xC5 }, FirstBytes(write[1]));
        Assert.Equal(new byte[] { 13, 14 }, FirstBytes(write[2]));
        Assert.Equal(new[] { Pages(8, 10) }, discard);
    }

    [Fact]
    public void LeavesAnUnchangedChildAsItIs()
    {
        using var forker = Image("forker", page => (byte)(page * 3), (0, 300));
        using var child = Image("child", page => (byte)(page * 3), (0, 300));
        var area = Pages(0, 300);

        var (write, discard) = InheritedPages.Compare(InheritedPages.Within(child, area), InheritedPages.Within(forker, area));

        Assert.Empty(write);
        Assert.Empty(discard);
    }

    [Fact]
    public void CutsRunsToTheArea()
    {
        using var chain = Image("only", page => (byte)page, (0, 10));

        var within = InheritedPages.Within(chain, Pages(3, 5));

        Assert.Equal(Pages(3, 5), Assert.Single(within).Range);
        Assert.Equal(new byte[] { 3, 4 }, FirstBytes(within[0]));
    }

    [Fact]
    public void LeavesOutTheRangesRestoredBeforeTheFork()
    {
        using var chain = Image("only", page => (byte)page, (0, 10), (20, 22));

        var outside = InheritedPages.Outside(chain.Runs, new[] { Pages(2, 4), Pages(6, 7), Pages(20, 22) });

        Assert.Equal(new[] { Pages(0, 2), Pages(4, 6), Pages(7, 10) }, outside.Select(r => r.Range));
        Assert.Equal(new byte[] { 4, 5 }, FirstBytes(outside[1]));
        Assert.Equal(new byte[] { 7, 8, 9 }, FirstBytes(outside[2]));
    }
}
