using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// The pagemap entries of a post-copy dump's pages left in the process: flagged lazy and not present, as CRIU's
/// dump --lazy-pages writes them, so that a restore fetches them from the page server of the held process and
/// reads nothing for them from the pages file.
/// </summary>
internal static class LeftBehindPages
{
    /// <summary>Adds <paramref name="runs"/> (address order) to a finished pagemap, keeping it in address order.</summary>
    public static void Record(List<PagemapEntry> pagemap, IReadOnlyList<AddressRange> runs)
    {
        if (runs.Count == 0)
        {
            return;
        }
        pagemap.AddRange(runs.Select(run => new PagemapEntry { Vaddr = run.Start.Value, CompatNrPages = 0, NrPages = run.Pages.Value, Flags = (uint)PagemapFlags.Lazy }));
        // Stable: the runs never overlap the copied ones (both come from one plan).
        var ordered = pagemap.OrderBy(e => e.Vaddr).ToList();
        pagemap.Clear();
        pagemap.AddRange(ordered);
    }
}
