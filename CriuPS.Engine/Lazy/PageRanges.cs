using CriuPS.Native.Memory;

namespace CriuPS.Engine.Lazy;

/// <summary>
/// A piece of a process's address space and where in the image its contents come from: the image address of
/// <see cref="Range"/>'s first page (they differ once the process has moved the pages with mremap).
/// </summary>
internal readonly record struct PagePiece(AddressRange Range, Address Source)
{
    /// <summary>The image address of <paramref name="address"/>, which must lie in the piece.</summary>
    public Address SourceOf(Address address) => Source + (address - Range.Start);
}

/// <summary>
/// Page-aligned, non-overlapping pieces of an address space, sorted by address, each tied to its image address.
/// Pieces are never merged: one piece always lies within one pagemap run (the page source reads within runs) and
/// within the area it was registered in (one UFFDIO_COPY cannot span areas). The address space changes under
/// us while pages arrive (munmap, madvise, mremap); the edits here follow those events.
/// </summary>
internal sealed class PageRanges
{
    private readonly List<PagePiece> pieces;

    public PageRanges()
        : this(new List<PagePiece>())
    {
    }

    private PageRanges(List<PagePiece> pieces) => this.pieces = pieces;

    public PageCount Count { get; private set; }

    public bool IsEmpty => pieces.Count == 0;

    public IReadOnlyList<PagePiece> Pieces => pieces;

    /// <summary>The piece with the lowest address; there must be one.</summary>
    public PagePiece First => pieces[0];

    public PageRanges Clone() => new(new List<PagePiece>(pieces)) { Count = Count };

    /// <summary>Adds a piece, which must not overlap any other.</summary>
    public void Add(AddressRange range, Address source)
    {
        if (range.IsEmpty)
        {
            return;
        }
        int index = IndexAfter(range.Start);
        if ((index > 0 && pieces[index - 1].Range.Overlaps(range)) || (index < pieces.Count && pieces[index].Range.Overlaps(range)))
        {
            throw new InvalidOperationException($"page range {range} overlaps one already listed");
        }
        pieces.Insert(index, new PagePiece(range, source));
        Count += range.Pages;
    }

    /// <summary>The piece holding <paramref name="address"/>, if any.</summary>
    public bool TryFind(Address address, out PagePiece piece)
    {
        int index = IndexAfter(address) - 1;
        if (index >= 0 && pieces[index].Range.Contains(address))
        {
            piece = pieces[index];
            return true;
        }
        piece = default;
        return false;
    }

    /// <summary>Removes <paramref name="range"/> wherever pieces cover it; returns the pages removed.</summary>
    public PageCount Remove(AddressRange range) => Cut(range, null);

    /// <summary>
    /// Moves what lies in [<paramref name="from"/>, +<paramref name="length"/>) to <paramref name="to"/>, keeping
    /// each page's image address (mremap moved the pages, and their registration, with them). Returns the pages
    /// that were listed at the destination, which the move replaced.
    /// </summary>
    public PageCount Move(Address from, Address to, ByteCount length)
    {
        var moved = new List<PagePiece>();
        Cut(new AddressRange(from, from + length), moved);
        var replaced = Cut(new AddressRange(to, to + length), null);
        foreach (var piece in moved)
        {
            var start = to + (piece.Range.Start - from);
            Add(new AddressRange(start, start + piece.Range.Length), piece.Source);
        }
        return replaced;
    }

    // Removes the parts of pieces inside range, keeping what lies outside it; collects the removed parts.
    private PageCount Cut(AddressRange range, List<PagePiece>? removed)
    {
        var total = PageCount.Zero;
        int index = Math.Max(0, IndexAfter(range.Start) - 1);
        while (index < pieces.Count && pieces[index].Range.Start < range.End)
        {
            var piece = pieces[index];
            if (!piece.Range.Overlaps(range))
            {
                index++;
                continue;
            }
            var start = piece.Range.Start > range.Start ? piece.Range.Start : range.Start;
            var end = piece.Range.End < range.End ? piece.Range.End : range.End;
            var cut = new AddressRange(start, end);
            removed?.Add(new PagePiece(cut, piece.SourceOf(start)));
            total += cut.Pages;
            pieces.RemoveAt(index);
            if (piece.Range.Start < start)
            {
                pieces.Insert(index++, piece with { Range = new AddressRange(piece.Range.Start, start) });
            }
            if (end < piece.Range.End)
            {
                pieces.Insert(index++, new PagePiece(new AddressRange(end, piece.Range.End), piece.SourceOf(end)));
            }
        }
        Count -= total;
        return total;
    }

    // The index of the first piece starting after address.
    private int IndexAfter(Address address)
    {
        int low = 0, high = pieces.Count;
        while (low < high)
        {
            int mid = (low + high) / 2;
            if (pieces[mid].Range.Start <= address)
            {
                low = mid + 1;
            }
            else
            {
                high = mid;
            }
        }
        return low;
    }
}
