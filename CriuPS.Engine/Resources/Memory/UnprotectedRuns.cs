using CriuPS.Native.Memory;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// The pages a plan's PAGEMAP_SCAN found without a userfaultfd write-protect bit (PAGE_IS_WRITTEN: every page of an
/// area that is not registered, the pages lifted or populated since their protection in one that is), within the
/// stretches it scanned. A background checkpoint protects exactly those again at the freeze
/// (<see cref="BackgroundSnapshot"/>), known from the walk that planned the pages instead of a second walk over every
/// page table entry, which cost milliseconds per GiB while frozen.
/// </summary>
internal sealed class UnprotectedRuns
{
    // Both in address order, each stretch added after the one before it.
    private readonly List<AddressRange> stretches = new();
    private readonly List<AddressRange> runs = new();

    /// <summary>Records a scanned stretch and the unprotected runs the scan found in it (in address order).</summary>
    public void Add(AddressRange stretch, List<AddressRange> unprotected)
    {
        stretches.Add(stretch);
        runs.AddRange(unprotected);
    }

    /// <summary>The unprotected runs within <paramref name="range"/>, or null when no scanned stretch holds all of it.</summary>
    public List<AddressRange>? Within(AddressRange range)
    {
        int stretch = SortedRanges.FirstEndingAfter(stretches, r => r, range.Start);
        if (stretch == stretches.Count || stretches[stretch].Start > range.Start || stretches[stretch].End < range.End)
        {
            return null;
        }
        var within = new List<AddressRange>();
        for (int i = SortedRanges.FirstEndingAfter(runs, r => r, range.Start); i < runs.Count && runs[i].Start < range.End; i++)
        {
            within.Add(runs[i].Intersect(range));
        }
        return within;
    }
}
