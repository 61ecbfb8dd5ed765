using CriuPS.Native.Memory;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// What a dump saves of one process's memory, decided while the process is frozen: the runs to copy, area by area,
/// and the runs the parent image holds. A dump copies them at once; a pre-dump once the process runs again.
/// </summary>
internal sealed class PagePlan
{
    public PagePlan(TrackedProcess? tracking) => Tracking = tracking;

    /// <summary>The write tracking the plan relied on, when the writes since the parent image were known.</summary>
    public TrackedProcess? Tracking { get; }

    /// <summary>Which pages the scan that planned them found without write protection (a background checkpoint protects them).</summary>
    public UnprotectedRuns? Unprotected { get; set; }

    /// <summary>Runs to copy into the pages file, by area, in address order.</summary>
    public List<(SavedVma Area, List<AddressRange> Runs)> Copies { get; } = new();

    /// <summary>Runs left to the parent image, in address order.</summary>
    public List<AddressRange> InParent { get; } = new();

    /// <summary>Private areas whose writes since the parent image are known.</summary>
    public HashSet<SavedVma> Tracked { get; } = new();

    /// <summary>Private areas the tracking did not cover (mapped, moved or replaced since): saved in full.</summary>
    public List<SavedVma> Untracked { get; } = new();

    public PageCount CopyPages { get; private set; }

    public PageCount ParentPages { get; private set; }

    /// <summary>Runs of a post-copy dump left in the process (<see cref="LeaveLazyBehind"/>), in address order.</summary>
    public List<AddressRange> LeftBehind { get; } = new();

    public void Copy(SavedVma area, List<AddressRange> runs)
    {
        Copies.Add((area, runs));
        CopyPages += new PageCount((ulong)runs.Sum(r => (long)r.Pages.Value));
    }

    public void LeaveToParent(List<AddressRange> runs)
    {
        InParent.AddRange(runs);
        ParentPages += new PageCount((ulong)runs.Sum(r => (long)r.Pages.Value));
    }

    /// <summary>
    /// A post-copy dump: the runs of the areas a lazy restore can fill (private anonymous memory) are not copied but
    /// left in the held process, whose page server sends them when the restored copy asks; the rest is copied.
    /// </summary>
    public void LeaveLazyBehind()
    {
        var copies = Copies.ToList();
        Copies.Clear();
        CopyPages = default;
        foreach (var (area, runs) in copies)
        {
            if (area.CanBeLazy)
            {
                LeftBehind.AddRange(runs);
            }
            else
            {
                Copy(area, runs);
            }
        }
        LeftBehind.Sort((a, b) => a.Start.Value.CompareTo(b.Start.Value));
    }
}
