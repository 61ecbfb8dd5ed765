using CriuPS.Native.Memory;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// How an incremental dump splits the pages of an area whose writes were tracked since its parent image was taken.
/// A page not written since then holds what it held at that moment, so:
/// <list type="bullet">
/// <item>a saved page that was written is copied;</item>
/// <item>a saved page that was not written, and that the parent chain holds, is the parent's (an in-parent run);</item>
/// <item>a saved page that was not written and that the parent chain does not hold was not worth saving then either:
/// it was all zero (the parent leaves zero pages out), or it was not there and has only been read since (a fresh
/// zero page, or the kernel's mark on an untouched page that write protection leaves, which PAGEMAP_SCAN reports
/// as swapped). Left out of the image, it comes back as a zero page, as it is.</item>
/// </list>
/// </summary>
internal static class PageDelta
{
    /// <param name="saved">Runs worth saving now (in address order).</param>
    /// <param name="written">Runs with data written since the parent (in address order).</param>
    /// <param name="parent">Runs the parent chain holds (in address order).</param>
    public static (List<AddressRange> Copy, List<AddressRange> InParent) Split(
        IReadOnlyList<AddressRange> saved, IReadOnlyList<AddressRange> written, IReadOnlyList<AddressRange> parent) =>
        (SortedRanges.Intersect(saved, written), SortedRanges.Intersect(SortedRanges.Subtract(saved, written), parent));
}
