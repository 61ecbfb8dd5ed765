using CriuPS.Native.Memory;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// What a child must change in an area it inherited, copy-on-write, from the process that forked it: the pages whose
/// saved contents differ from the forker's saved page at the same address (or that the forker has not: a saved page
/// is never all zeros), and the pages the forker has that the child has not (its zeros). Every other page is left
/// shared. The saved pages are compared byte for byte, as CRIU compares an inherited area's pages on restore.
/// </summary>
internal static class InheritedPages
{
    // The most read of each pages file at once: 256 pages.
    private const int ChunkBytes = 1 << 20;

    /// <summary>The saved runs of a chain within <paramref name="range"/>, cut to it, in address order.</summary>
    public static List<PageRun> Within(PageChain pages, AddressRange range)
    {
        var runs = pages.Runs;
        var within = new List<PageRun>();
        for (int i = SortedRanges.FirstEndingAfter(runs, r => r.Range, range.Start); i < runs.Count && runs[i].Range.Start < range.End; i++)
        {
            within.Add(Cut(runs[i], runs[i].Range.Intersect(range)));
        }
        return within;
    }

    /// <summary>
    /// The child's runs to write over what it inherited (in address order), and the ranges to discard (the forker's
    /// pages where the child saved none), given both processes' saved runs within one area.
    /// </summary>
    public static (List<PageRun> Write, List<AddressRange> Discard) Compare(List<PageRun> child, List<PageRun> forker)
    {
        var childRanges = child.Select(r => r.Range).ToList();
        var forkerRanges = forker.Select(r => r.Range).ToList();
        var write = SortedRanges.Subtract(childRanges, forkerRanges).Select(range => Slice(child, range)).ToList();
        var discard = SortedRanges.Subtract(forkerRanges, childRanges);
        var childBuffer = new byte[ChunkBytes];
        var forkerBuffer = new byte[ChunkBytes];
        // Each range of both lies within one run of each (the intersection of one run with one run).
        foreach (var both in SortedRanges.Intersect(childRanges, forkerRanges))
        {
            var mine = Slice(child, both);
            var theirs = Slice(forker, both);
            write.AddRange(Differing(mine, theirs, childBuffer, forkerBuffer).Select(range => Slice(child, range)));
        }
        write.Sort((a, b) => a.Range.Start.CompareTo(b.Range.Start));
        return (write, discard);
    }

    // The pages of a range where two runs of it differ, adjacent pages together.
    private static List<AddressRange> Differing(PageRun mine, PageRun theirs, byte[] mineBuffer, byte[] theirsBuffer)
    {
        var differing = new List<AddressRange>();
        ulong length = mine.Range.Length.Value;
        for (ulong done = 0; done < length;)
        {
            int chunk = (int)Math.Min(length - done, ChunkBytes);
            mine.Source.Read(mine.FileOffset + (long)done, mineBuffer.AsSpan(0, chunk));
            theirs.Source.Read(theirs.FileOffset + (long)done, theirsBuffer.AsSpan(0, chunk));
            for (int page = 0; page < chunk; page += Page.Size)
            {
                if (mineBuffer.AsSpan(page, Page.Size).SequenceEqual(theirsBuffer.AsSpan(page, Page.Size)))
                {
                    continue;
                }
                var at = mine.Range.Start + new ByteCount(done + (ulong)page);
                var one = new AddressRange(at, at + new ByteCount(Page.Size));
                if (differing.Count > 0 && differing[^1].End == at)
                {
                    differing[^1] = new AddressRange(differing[^1].Start, one.End);
                }
                else
                {
                    differing.Add(one);
                }
            }
            done += (ulong)chunk;
        }
        return differing;
    }

    // The part of a run list (in address order) at `range`, which lies within one of its runs.
    private static PageRun Slice(List<PageRun> runs, AddressRange range) =>
        Cut(runs[SortedRanges.FirstEndingAfter(runs, r => r.Range, range.Start)], range);

    private static PageRun Cut(PageRun run, AddressRange part) =>
        run with { Range = part, FileOffset = run.FileOffset + (long)(part.Start - run.Range.Start).Value };

    /// <summary>The parts of <paramref name="runs"/> outside <paramref name="ranges"/> (both in address order).</summary>
    public static List<PageRun> Outside(IReadOnlyList<PageRun> runs, IReadOnlyList<AddressRange> ranges)
    {
        var outside = new List<PageRun>();
        foreach (var run in runs)
        {
            outside.AddRange(SortedRanges.Subtract([run.Range], ranges).Select(part => Cut(run, part)));
        }
        return outside;
    }
}
