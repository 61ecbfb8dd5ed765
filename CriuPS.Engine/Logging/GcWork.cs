namespace CriuPS.Engine.Logging;

/// <summary>
/// The garbage collections so far, and the bytes allocated, in every thread of this process: a phase that collects
/// stops every thread for it (a restore of 10,000 areas allocates megabytes of entries, checks and injected calls),
/// so the log says how many collections each phase took, and what it allocated: inside the no-collection window
/// (<see cref="NoCollectionWindow"/>) an allocation costs no collection, but each new page of the heap is a fault.
/// </summary>
internal readonly record struct GcWork(long Collections, long Allocated)
{
    // Phases that allocate less, without a collection, say nothing of it.
    private const long Unremarkable = 1 << 20;

    // Collections that ran: the GC's own index. CollectionCount also counts the start of a no-collection window,
    // which collects nothing.
    public static GcWork SoFar() => new(GC.GetGCMemoryInfo(GCKind.Any).Index, GC.GetTotalAllocatedBytes());

    /// <summary>" (N garbage collections, X MiB allocated)" since <paramref name="start"/>, or nothing when neither is worth a word.</summary>
    public string Since(GcWork start)
    {
        long collections = Collections - start.Collections;
        long allocated = Allocated - start.Allocated;
        if (collections <= 0 && allocated < Unremarkable)
        {
            return "";
        }
        string counted = collections switch
        {
            <= 0 => "no garbage collection",
            1 => "1 garbage collection",
            _ => $"{collections} garbage collections",
        };
        return $" ({counted}, {allocated >> 20} MiB allocated)";
    }
}
