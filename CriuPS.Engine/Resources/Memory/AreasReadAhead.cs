using CriuPS.Engine.Logging;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// The areas of a final dump (a checkpoint, a move's last dump; not a pre-dump, not a background checkpoint, which
/// reads its own ahead), read ahead of its freeze: smaps walks every page of every area (about 100 ms per GiB here,
/// most of a held process's "Freezing" phase; 7 MB of text for 5,000 areas), and the dump needs only each area's
/// VmFlags. As for a
/// background checkpoint (<see cref="VmFlagsAhead"/>), smaps is read while the processes run, and at the freeze only
/// maps (no page walk), the flags taken from the earlier read when the layout is the same. What differs is when they
/// are confirmed: the tree stays frozen for the rest of the dump, so smaps is read again on a thread of its own while
/// the dump saves the state and memory and writes the images, and the dump waits for it before the image is
/// committed. That read shows the flags at the freeze itself (a frozen process changes none): the image is exact, or
/// the dump fails and the processes run on.
/// </summary>
internal sealed class AreasReadAhead
{
    private const string What = "checkpoint";
    private const string Action = "Checkpoint (or move) it again: the flags changed between the read ahead of the freeze and the freeze (madvise, mlock or mseal at that moment).";

    private readonly Dictionary<int, VmFlagsAhead> ahead;
    private readonly List<(VmFlagsAhead Flags, List<VmaInfo> AtFreeze)> used = [];
    private Task? confirming;

    private AreasReadAhead(Dictionary<int, VmFlagsAhead> ahead) => this.ahead = ahead;

    /// <summary>Reads the smaps of each process while it runs; one that cannot be read is read while frozen instead.</summary>
    public static AreasReadAhead Read(IEnumerable<int> processIds)
    {
        var ahead = new Dictionary<int, VmFlagsAhead>();
        foreach (int pid in processIds)
        {
            try
            {
                ahead[pid] = VmFlagsAhead.Read(pid);
            }
            catch (IOException)
            {
                // gone or not readable now: the dump reads smaps while frozen, as without this
            }
        }
        return new AreasReadAhead(ahead);
    }

    /// <summary>The areas of <paramref name="pid"/> as read ahead (null when they were not): a layout that may have changed since.</summary>
    public IReadOnlyList<VmaInfo>? Layout(int pid) => ahead.GetValueOrDefault(pid)?.Layout;

    /// <summary>While frozen: the areas of <paramref name="pid"/> from maps with the flags read ahead, or null (smaps must be read now).</summary>
    public List<VmaInfo>? AtFreeze(int pid, EngineLog log) => ahead.GetValueOrDefault(pid)?.AtFreeze(log);

    /// <summary>Once every process is attached: starts reading smaps again, on a thread of its own, for the areas taken from the read ahead.</summary>
    public void StartConfirming(IEnumerable<(int Pid, List<VmaInfo> Areas)> attached, EngineLog log)
    {
        foreach (var (pid, areas) in attached)
        {
            if (ahead.GetValueOrDefault(pid) is { Used: true } flags)
            {
                used.Add((flags, areas.ToList()));
            }
        }
        if (used.Count > 0)
        {
            confirming = Task.Run(() =>
            {
                foreach (var (flags, areas) in used)
                {
                    flags.Confirm(areas, log, What, Action);
                }
            });
        }
    }

    /// <summary>Before the image is committed: waits for the confirmation; throws its failure.</summary>
    public void Confirmed() => confirming?.GetAwaiter().GetResult();
}
