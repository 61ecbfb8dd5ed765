using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>What a pagemap entry says, whichever CRIU version wrote it.</summary>
internal static class PagemapEntryFacts
{
    /// <summary>The addresses of the run (old images count its pages in compat_nr_pages).</summary>
    public static AddressRange Range(this PagemapEntry entry) =>
        new(new Address(entry.Vaddr), new Address(entry.Vaddr) + new PageCount(entry.HasNrPages ? entry.NrPages : entry.CompatNrPages).Bytes);

    /// <summary>Whether the run's bytes are in the parent image: PE_PARENT in current images, in_parent in old ones (CRIU reads both).</summary>
    public static bool IsInParent(this PagemapEntry entry) => entry.InParent || ((PagemapFlags)entry.Flags & PagemapFlags.InParent) != 0;

    /// <summary>
    /// Whether the run's bytes are in no image at all: flagged lazy but not present, as a post-copy dump (CRIU's
    /// dump --lazy-pages) lists the pages it left in the process for its page server to send.
    /// </summary>
    public static bool IsLeftBehind(this PagemapEntry entry) =>
        !entry.IsInParent() && ((PagemapFlags)entry.Flags & (PagemapFlags.Lazy | PagemapFlags.Present)) == PagemapFlags.Lazy;
}
