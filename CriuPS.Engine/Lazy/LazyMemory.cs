using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Lazy;

/// <summary>
/// What of a process's memory a lazy restore leaves for later: the pagemap runs flagged LAZY that lie wholly in
/// areas a userfaultfd can fill (a run elsewhere, as a CRIU image might have, is simply read at once), the areas
/// to register, and the missing pages cut at run and area boundaries.
/// </summary>
internal sealed class LazyMemory
{
    private LazyMemory(HashSet<PageRun> runs, List<AddressRange> areas, PageRanges missing)
    {
        Runs = runs;
        Areas = areas;
        Missing = missing;
    }

    /// <summary>The runs the restore skips.</summary>
    public IReadOnlySet<PageRun> Runs { get; }

    /// <summary>The areas to register for missing-page faults, in address order.</summary>
    public IReadOnlyList<AddressRange> Areas { get; }

    public PageRanges Missing { get; }

    public static LazyMemory Plan(PageChain pages, IReadOnlyList<VmaEntry> areas)
    {
        var sorted = areas.OrderBy(a => a.Start).ToList();
        var runs = new HashSet<PageRun>();
        var registered = new SortedSet<ulong>();
        var missing = new PageRanges();
        foreach (var run in pages.Runs.Where(r => r.Lazy))
        {
            var covering = sorted.Where(a => new AddressRange(a.Start, a.End).Overlaps(run.Range)).ToList();
            bool eligible = covering.Count > 0 && covering.All(SavedVma.MayBeLazy)
                && covering[0].Start <= run.Range.Start.Value && covering[^1].End >= run.Range.End.Value
                && covering.Zip(covering.Skip(1)).All(p => p.First.End == p.Second.Start);
            if (!eligible)
            {
                continue;
            }
            runs.Add(run);
            foreach (var area in covering)
            {
                var start = Math.Max(area.Start, run.Range.Start.Value);
                var end = Math.Min(area.End, run.Range.End.Value);
                missing.Add(new AddressRange(start, end), new Address(start));
                registered.Add(area.Start);
            }
        }
        var toRegister = sorted.Where(a => registered.Contains(a.Start)).Select(a => new AddressRange(a.Start, a.End)).ToList();
        return new LazyMemory(runs, toRegister, missing);
    }
}
