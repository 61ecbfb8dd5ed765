using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Tests.Memory;

/// <summary>
/// The range arithmetic of incremental dumps: which saved pages are copied, which are left to the parent, which are
/// left out, and the pagemap that lists copied and parent runs together in address order.
/// </summary>
public sealed class PageDeltaTests
{
    // Ranges written as page numbers: "0-2 5-6" is pages [0, 2) and [5, 6).
    private static List<AddressRange> Pages(string text) => text.Split(' ', StringSplitOptions.RemoveEmptyEntries)
        .Select(part => part.Split('-').Select(ulong.Parse).ToArray())
        .Select(p => new AddressRange(new Address(p[0] << Page.Shift), new Address(p[1] << Page.Shift)))
        .ToList();

    private static string Text(IEnumerable<AddressRange> ranges) =>
        string.Join(' ', ranges.Select(r => $"{r.Start.Value >> Page.Shift}-{r.End.Value >> Page.Shift}"));

    [Theory]
    [InlineData("0-10", "2-3 5-7", "2-3 5-7")]
    [InlineData("0-4 6-10", "3-7", "3-4 6-7")]
    [InlineData("0-2 4-6", "2-4 6-8", "")]
    [InlineData("0-3 3-6", "1-5", "1-3 3-5")]
    [InlineData("", "0-4", "")]
    public void IntersectKeepsWhatBothListsHold(string a, string b, string expected)
    {
        Assert.Equal(expected, Text(SortedRanges.Intersect(Pages(a), Pages(b))));
        Assert.Equal(expected, Text(SortedRanges.Intersect(Pages(b), Pages(a))));
    }

    [Theory]
    [InlineData("0-10", "2-3 5-7", "0-2 3-5 7-10")]
    [InlineData("0-4 6-10", "3-7", "0-3 7-10")]
    [InlineData("0-4 6-10", "0-10", "")]
    [InlineData("2-4", "0-1 5-6", "2-4")]
    [InlineData("0-2 4-8 9-12", "1-5 7-10", "0-1 5-7 10-12")]
    [InlineData("0-4", "", "0-4")]
    public void SubtractTakesOutWhatTheSecondListHolds(string a, string b, string expected) =>
        Assert.Equal(expected, Text(SortedRanges.Subtract(Pages(a), Pages(b))));

    [Fact]
    public void WrittenPagesAreCopiedTheRestComesFromTheParentWhereItHoldsThem()
    {
        // Saved now: 0-8 and 10-12. Written since the parent: 2-3 and 11-13 (12 is written but not saved: it has no data).
        // The parent holds 0-6 (it left out zero page 6-7, and 7-8 was not there) and 10-11.
        var (copy, inParent) = PageDelta.Split(Pages("0-8 10-12"), Pages("2-3 11-13"), Pages("0-6 10-11"));

        Assert.Equal("2-3 11-12", Text(copy));
        Assert.Equal("0-2 3-6 10-11", Text(inParent));
        // Pages 6-8, saved but neither written nor held by the parent, were zero then and are zero now: left out.
    }

    [Fact]
    public void WithoutAParentOnlyWrittenPagesAreKept()
    {
        var (copy, inParent) = PageDelta.Split(Pages("0-4"), Pages("1-2"), []);

        Assert.Equal("1-2", Text(copy));
        Assert.Empty(inParent);
    }

    [Fact]
    public void ThePagemapListsCopiedAndParentRunsInAddressOrder()
    {
        var entries = new List<PagemapEntry>();
        var builder = new PagemapBuilder(entries);
        // Copied runs arrive first, in address order (their bytes follow one another in the pages file), then the
        // parent's; touching runs of the same kind merge, runs of different kinds do not.
        builder.Add(Pages("0-2")[0].Start, new PageCount(2), PagemapFlags.Present);
        builder.Add(Pages("2-3")[0].Start, new PageCount(1), PagemapFlags.Present);
        builder.Add(Pages("7-8")[0].Start, new PageCount(1), PagemapFlags.Present | PagemapFlags.Lazy);
        builder.AddInParent(Pages("3-5")[0]);
        builder.AddInParent(Pages("5-7")[0]);
        builder.AddInParent(Pages("9-10")[0]);
        builder.Finish();

        Assert.Equal(
            new (ulong, ulong, PagemapFlags)[] { (0, 3, PagemapFlags.Present), (3, 4, PagemapFlags.InParent), (7, 1, PagemapFlags.Present | PagemapFlags.Lazy), (9, 1, PagemapFlags.InParent) },
            entries.Select(e => (e.Vaddr >> Page.Shift, e.NrPages, (PagemapFlags)e.Flags)));
        Assert.Equal((4UL, 5UL), (builder.Pages.Value, builder.ParentPages.Value));
    }
}
