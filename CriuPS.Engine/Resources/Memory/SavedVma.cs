using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>Which pages of an area go into the pages image.</summary>
internal enum PagePolicy
{
    /// <summary>Nothing: the contents come back from elsewhere (a file, the kernel).</summary>
    None,

    /// <summary>Anonymous pages, including copy-on-write copies in private file mappings; untouched pages are skipped.</summary>
    Private,

    /// <summary>Every page, whatever the kernel says of it (the vDSO: a few pages we compare on restore).</summary>
    All,
}

/// <summary>One memory area of a dumped process: what /proc said, what the image says, and which pages to save.</summary>
internal sealed record SavedVma(VmaInfo Info, VmaEntry Entry, PagePolicy Policy)
{
    public VmaStatus Status => (VmaStatus)Entry.Status;

    /// <summary>Whether zero-filled pages may be left out (they come back as fresh zero pages of anonymous memory).</summary>
    public bool ZeroPagesMayBeSkipped => Policy == PagePolicy.Private && (Status & VmaStatus.AnonPrivate) != 0;

    /// <summary>
    /// Whether every page of the area is anonymous (or the zero page): private anonymous memory, not the vDSO family
    /// (kernel pages). Its pages need no test for page-cache pages, which costs PAGEMAP_SCAN a look at each page's
    /// struct page: about 150 times the cost of testing page-table bits (100 ms against 0.7 ms for 512 MiB here).
    /// </summary>
    public bool HoldsOnlyAnonymousPages => Policy == PagePolicy.Private && (Status & VmaStatus.AnonPrivate) != 0
        && (Status & (VmaStatus.Vdso | VmaStatus.Vvar | VmaStatus.Vsyscall)) == 0;

    /// <summary>Whether CRIU would let these pages arrive lazily, on fault.</summary>
    public bool CanBeLazy => MayBeLazy(Entry);

    /// <summary>
    /// Whether an area's pages may arrive lazily: private anonymous memory (what a userfaultfd can fill), not locked
    /// (mlock must find it all there), not droppable (a userfaultfd cannot register it), not hugetlb (a userfaultfd
    /// fills it a whole huge page at a time, and its pages are saved a base page at a time) and not the vDSO family.
    /// </summary>
    public static bool MayBeLazy(VmaEntry area)
    {
        var status = (VmaStatus)area.Status;
        return (status & VmaStatus.AnonPrivate) != 0 && (status & (VmaStatus.Vdso | VmaStatus.Vvar | VmaStatus.Vsyscall)) == 0
            && (area.Flags & (uint)(Native.Interop.Mman.MAP_LOCKED | Native.Interop.Mman.MAP_DROPPABLE | Native.Interop.Mman.MAP_HUGETLB)) == 0;
    }
}
