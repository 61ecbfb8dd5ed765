namespace CriuPS.Engine.Logging;

/// <summary>
/// The garbage collections so far, and the bytes allocated, in every thread of this process: a phase that collects
/// stops every thread for it (a restore of 10,000 areas allocates megabytes of entries, checks and injected calls),
/// so the log says how many collections each phase took, and what it allocated that made them.
/// </summary>
internal readonly record struct GcWork(int Collections, long Allocated)
{
    public static GcWork SoFar() => new(GC.CollectionCount(0), GC.GetTotalAllocatedBytes());

    /// <summary>" (N garbage collections, X MiB allocated)" since <paramref name="start"/>, or nothing when none ran.</summary>
    public string Since(GcWork start)
    {
        int collections = Collections - start.Collections;
        return collections <= 0 ? "" : $" ({collections} garbage collection{(collections == 1 ? "" : "s")}, {(Allocated - start.Allocated) / (1 << 20)} MiB allocated)";
    }
}
