using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// The VmFlags of a process's areas for a background checkpoint, read from /proc/PID/smaps while the process runs
/// ahead of its freeze instead of while it is frozen: smaps counts every page of every area (Rss, Pss...), about
/// 100 ms per GiB here, and the dump needs nothing of it but each area's VmFlags. At the freeze only /proc/PID/maps is
/// read (no page walk); the areas are taken from it, their flags from the earlier read; once the process runs again,
/// smaps is read once more and must show the same flags.
/// <para>
/// Why the image holds the flags of the freeze instant. The place, protection, offset, file and name of every area
/// come from maps read while frozen: exact. A VmFlag the dump uses is either fixed when the area is mapped (gd nr dp
/// io pf ss ht mr mw me: it changes only with a new mapping, which the layout shows) or set by a call of the process
/// itself over a range (madvise: sr rr dc dd mg hg nh wf; mlock/munlock: lo lf; mseal: sl; prctl PR_SET_MEMORY_MERGE:
/// mg). Such a call over part of an area splits it, and the layout shows that: when maps at the freeze differs from
/// the earlier read in any area, the earlier flags are not used and smaps is read while frozen, as without
/// -Background. Over a whole area it leaves the layout as it was (or merges the area with a neighbour, which the layout
/// shows too), so a call between the earlier read and the freeze is not seen at the freeze: it is seen after it, by
/// comparing the flags read once the process runs again with the earlier ones, area by area over the ranges recorded
/// at the freeze. A difference fails the checkpoint (<see cref="CheckpointErrorKind.DumpFailed"/>; the process runs
/// on unharmed): the flags held at the freeze can then not be known. Equal flags mean no change was made across the
/// freeze unless the process changed a flag and changed it back within that window (both reads lie within a few
/// hundred ms of the freeze); Linux offers no cheaper record of VmFlags than smaps' page walk, nor a count of changes
/// to them, that would close that case.
/// </para>
/// <para>
/// Flags not compared: rd wr ex (the protection, which comes from maps at the freeze), ac (accounting, which mprotect
/// sets and clears with the protection), sd (soft-dirty, set by the kernel on its own), uw um ui (the registration of
/// our own userfaultfd, which changes between the reads and is not saved).
/// </para>
/// </summary>
internal sealed class VmFlagsAhead
{
    private static readonly string[] NotCompared = ["rd", "wr", "ex", "ac", "sd", "uw", "um", "ui"];

    private readonly int pid;
    private readonly List<VmaInfo> ahead;

    private VmFlagsAhead(int pid, List<VmaInfo> ahead)
    {
        this.pid = pid;
        this.ahead = ahead;
    }

    /// <summary>The areas as read ahead of the freeze.</summary>
    public IReadOnlyList<VmaInfo> Layout => ahead;

    /// <summary>Whether the areas at the freeze took their flags from the read ahead (and must be confirmed).</summary>
    public bool Used { get; private set; }

    /// <summary>Reads smaps while the process runs, ahead of its freeze.</summary>
    public static VmFlagsAhead Read(int pid) => new(pid, SmapsParser.Read(pid));

    /// <summary>
    /// While the process is frozen: its areas from /proc/PID/maps with the flags read ahead, or null when the layout
    /// changed since (then smaps must be read now).
    /// </summary>
    public List<VmaInfo>? AtFreeze(EngineLog log)
    {
        var now = SmapsParser.ReadMaps(pid);
        int changed = FirstDifference(now);
        if (changed >= 0)
        {
            log.Detail($"areas of {pid}: the layout changed since smaps was read ahead of the freeze ({(changed < now.Count ? now[changed].ToString() : "an area less")}): smaps is read while frozen");
            return null;
        }
        for (int i = 0; i < now.Count; i++)
        {
            // maps has neither: a hugetlb area's page size (its MAP_HUGE_* bits in the image) comes from smaps too.
            now[i] = now[i] with { VmFlags = ahead[i].VmFlags, KernelPageSize = ahead[i].KernelPageSize };
        }
        Used = true;
        log.Detail($"areas of {pid}: {now.Count} read from maps at the freeze, their VmFlags from smaps read ahead (same layout)");
        return now;
    }

    /// <summary>
    /// Once the process runs again: reads smaps and fails the checkpoint if an area recorded at the freeze
    /// (<paramref name="atFreeze"/>) shows other flags now than ahead of the freeze, or is gone.
    /// </summary>
    /// <param name="what">The checkpoint that fails, for the message.</param>
    /// <param name="action">What to do when it failed.</param>
    public void Confirm(IReadOnlyList<VmaInfo> atFreeze, EngineLog log, string what = "background checkpoint",
        string action = "Checkpoint it again, or without -Background: frozen while its areas are read, it cannot change them meanwhile.")
    {
        var after = SmapsParser.Read(pid);
        foreach (var area in atFreeze)
        {
            // one pass per area, nothing made: 10,000 areas are confirmed while the tree is frozen
            int first = FirstOverlapping(after, area);
            bool gone = first == after.Count || after[first].Start >= area.End;
            VmaInfo? differing = null;
            for (int i = first; i < after.Count && after[i].Start < area.End && differing is null; i++)
            {
                if (!after[i].VmFlags.SameAs(area.VmFlags, NotCompared) || after[i].KernelPageSize != area.KernelPageSize)
                {
                    differing = after[i];
                }
            }
            if (gone || differing is not null)
            {
                string why = differing is null
                    ? "is gone"
                    : differing.KernelPageSize != area.KernelPageSize
                        ? $"has pages of {differing.KernelPageSize} bytes where it had {area.KernelPageSize} ahead of the freeze (it was mapped again)"
                        : $"shows the flags '{differing.VmFlags.Without(NotCompared)}' where it showed '{area.VmFlags.Without(NotCompared)}' ahead of the freeze (madvise, mlock or mseal while it was checkpointed)";
                throw new CheckpointException(CheckpointErrorKind.DumpFailed,
                    $"The {what} of process {pid} failed: its area {area} {why}, so the flags it had at the freeze cannot be known. The process runs on unharmed.", pid,
                    action);
            }
        }
        log.Detail($"areas of {pid}: VmFlags read again after the freeze are those read ahead of it ({atFreeze.Count} area(s))");
    }

    // The index of the first area of maps that is not the one read ahead at that place (Count when one less), or -1.
    private int FirstDifference(List<VmaInfo> now)
    {
        for (int i = 0; i < now.Count; i++)
        {
            if (i >= ahead.Count || !now[i].IsSameArea(ahead[i]))
            {
                return i;
            }
        }
        return now.Count == ahead.Count ? -1 : now.Count;
    }

    // The index of the first area (in address order) that ends after the start of an area: the first that shares
    // addresses with it, if any does.
    private static int FirstOverlapping(List<VmaInfo> areas, VmaInfo area)
    {
        int lo = 0, hi = areas.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) / 2;
            if (areas[mid].End <= area.Start)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }
        return lo;
    }
}
