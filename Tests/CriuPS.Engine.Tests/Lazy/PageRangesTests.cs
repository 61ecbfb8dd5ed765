using CriuPS.Engine.Lazy;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Tests.Lazy;

/// <summary>The missing pages of a lazy restore, as the process moves, discards and unmaps memory under them.</summary>
public class PageRangesTests
{
    private const ulong P = 4096;

    [Fact]
    public void RemovingSplitsPiecesAndCountsWhatWasThere()
    {
        var ranges = Ranges((0x10000, 16 * P));
        Assert.Equal(3UL, ranges.Remove(new AddressRange(0x10000 + 4 * P, 0x10000 + 7 * P)).Value);
        Assert.Equal(2UL, ranges.Remove(new AddressRange(0x10000 + 6 * P, 0x10000 + 9 * P)).Value);
        Assert.Equal(11UL, ranges.Count.Value);
        Assert.Equal(
            new[] { (0x10000UL, 0x10000 + 4 * P, 0x10000UL), (0x10000 + 9 * P, 0x10000 + 16 * P, 0x10000 + 9 * P) },
            ranges.Pieces.Select(p => (p.Range.Start.Value, p.Range.End.Value, p.Source.Value)));
    }

    [Fact]
    public void MovedPagesKeepTheirImageAddress()
    {
        var ranges = Ranges((0x10000, 8 * P));
        ranges.Remove(new AddressRange(0x10000 + 2 * P, 0x10000 + 3 * P));
        ranges.Move(new Address(0x10000 + P), new Address(0x900000), new ByteCount(4 * P));
        Assert.True(ranges.TryFind(new Address(0x900000 + 2 * P + 5), out var piece));
        Assert.Equal(0x10000 + 3 * P, piece.SourceOf(new Address(0x900000 + 2 * P)).Value);
        Assert.False(ranges.TryFind(new Address(0x900000 + P), out _), "the page delivered before the move stays delivered");
        Assert.False(ranges.TryFind(new Address(0x10000 + P), out _));
        Assert.Equal(7UL, ranges.Count.Value);
        Assert.Equal(
            new (ulong, ulong, ulong)[]
            {
                (0x10000UL, 0x10000 + P, 0x10000UL),
                (0x10000 + 5 * P, 0x10000 + 8 * P, 0x10000 + 5 * P),
                (0x900000, 0x900000 + P, 0x10000 + P),
                (0x900000 + 2 * P, 0x900000 + 4 * P, 0x10000 + 3 * P),
            },
            ranges.Pieces.Select(p => (p.Range.Start.Value, p.Range.End.Value, p.Source.Value)));
    }

    [Fact]
    public void AMoveOntoListedPagesReplacesThem()
    {
        var ranges = Ranges((0x10000, 4 * P), (0x20000, 4 * P));
        Assert.Equal(2UL, ranges.Move(new Address(0x10000), new Address(0x20000 + 2 * P), new ByteCount(2 * P)).Value);
        Assert.Equal(6UL, ranges.Count.Value);
        Assert.True(ranges.TryFind(new Address(0x20000 + 3 * P), out var piece));
        Assert.Equal(0x10000 + P, piece.SourceOf(new Address(0x20000 + 3 * P)).Value);
    }

    [Fact]
    public void AClonedSetChangesOnItsOwn()
    {
        var parent = Ranges((0x10000, 4 * P));
        var child = parent.Clone();
        child.Remove(new AddressRange(0x10000, 0x10000 + 4 * P));
        Assert.True(child.IsEmpty);
        Assert.Equal(4UL, parent.Count.Value);
    }

    [Fact]
    public void RefusesOverlappingPieces()
    {
        var ranges = Ranges((0x10000, 4 * P));
        Assert.Throws<InvalidOperationException>(() => ranges.Add(new AddressRange(0x10000 + 3 * P, 0x10000 + 5 * P), new Address(0)));
    }

    private static PageRanges Ranges(params (ulong Start, ulong Length)[] pieces)
    {
        var ranges = new PageRanges();
        foreach (var (start, length) in pieces)
        {
            ranges.Add(new AddressRange(start, start + length), new Address(start));
        }
        return ranges;
    }
}
