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
}
