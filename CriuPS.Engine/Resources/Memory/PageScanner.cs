using System.Runtime.InteropServices;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// Finds the pages of an area worth saving: PAGEMAP_SCAN asks the kernel for runs of anonymous (incl.
/// copy-on-write) pages in one call per area; older kernels get /proc/PID/pagemap read page by page. With write
/// tracking (see <see cref="WriteTracking"/>), PAGEMAP_SCAN also says which of them were written since the last dump.
/// </summary>
internal sealed class PageScanner : IDisposable
{
    // pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
    private const ulong PagemapPresent = 1UL << 63;
    private const ulong PagemapSwapped = 1UL << 62;
    private const ulong PagemapFileOrSharedAnon = 1UL << 61;

    private const int RegionBatch = 4096;
    private readonly FileDescriptor pagemap;
    private readonly PageRegion[] regions = new PageRegion[RegionBatch];

    public PageScanner(int pid, bool usePagemapScan)
    {
        pagemap = FileDescriptor.Open($"/proc/{pid}/pagemap", O.RDONLY);
        UsesPagemapScan = usePagemapScan;
    }

    public bool UsesPagemapScan { get; }

    /// <summary>
    /// The pages without a userfaultfd write-protect bit among those <see cref="Scan(IReadOnlyList{ValueTuple{AddressRange, PagePolicy, bool}})"/>
    /// found, in the stretches it scanned with PAGEMAP_SCAN: told by the same walk (PAGE_IS_WRITTEN in the return mask).
    /// </summary>
    public UnprotectedRuns Unprotected { get; } = new();

    /// <summary>Runs of pages to save in <paramref name="range"/>, in address order.</summary>
    public List<AddressRange> Scan(AddressRange range, PagePolicy policy)
    {
        if (policy == PagePolicy.All)
        {
            return new List<AddressRange> { range };
        }
        return UsesPagemapScan ? ScanWithIoctl(range) : ScanPagemapFile(range);
    }

    /// <summary>
    /// <see cref="Scan"/> for many areas, in address order: one result per area. With PAGEMAP_SCAN, adjacent areas
    /// are scanned together, one call for each stretch of them, and the runs found are split among them: a process
    /// of thousands of small areas made a call for each (10,000 took 35 ms). Areas said to hold only anonymous pages
    /// (<see cref="SavedVma.HoldsOnlyAnonymousPages"/>) are scanned without the test for page-cache pages, the costly
    /// part of a scan, in stretches of their own.
    /// </summary>
    public List<List<AddressRange>> Scan(IReadOnlyList<(AddressRange Range, PagePolicy Policy, bool OnlyAnonymous)> areas)
    {
        var results = new List<List<AddressRange>>(areas.Count);
        int i = 0;
        while (i < areas.Count)
        {
            if (!UsesPagemapScan || areas[i].Policy == PagePolicy.All)
            {
                results.Add(Scan(areas[i].Range, areas[i].Policy));
                i++;
                continue;
            }
            int end = i + 1;
            while (end < areas.Count && areas[end].Policy != PagePolicy.All && areas[end].Range.Start == areas[end - 1].Range.End
                && areas[end].OnlyAnonymous == areas[i].OnlyAnonymous)
            {
                end++;
            }
            var stretch = new AddressRange(areas[i].Range.Start, areas[end - 1].Range.End);
            var unprotected = new List<AddressRange>();
            var runs = ScanWithIoctl(stretch, areas[i].OnlyAnonymous ? AnonymousPages : SavedPages, unprotected);
            Unprotected.Add(stretch, unprotected);
            int next = 0;
            for (; i < end; i++)
            {
                var range = areas[i].Range;
                var own = new List<AddressRange>();
                while (next < runs.Count && runs[next].End <= range.Start)
                {
                    next++;
                }
                // A run may reach over the area's end into the next one: it is cut there, and looked at again.
                for (int r = next; r < runs.Count && runs[r].Start < range.End; r++)
                {
                    own.Add(runs[r].Intersect(range));
                }
                results.Add(own);
            }
        }
        return results;
    }

    /// <summary>
    /// Runs of pages whose data were written since the area was last write-protected (PAGE_IS_WRITTEN, kept by a
    /// userfaultfd in asynchronous write-protect mode), in address order. With <paramref name="rearm"/> the same call
    /// protects them again (PM_SCAN_WP_MATCHING): a write that races with the scan is reported now or next time, never
    /// lost. Only pages with data count (page-cache pages of private file mappings are not saved, whatever happens to
    /// them). Null when the area is not registered for asynchronous write protection (PM_SCAN_CHECK_WPASYNC): a new
    /// area, one that was moved or replaced, or one whose tracking ended.
    /// </summary>
    public List<AddressRange>? ScanWritten(AddressRange range, bool rearm)
    {
        var arg = new PmScanArg
        {
            Flags = PagemapScan.CheckWpAsync | (rearm ? PagemapScan.WpMatching : 0),
            CategoryInverted = (ulong)(PageCategory.File | PageCategory.PfnZero),
            CategoryMask = (ulong)(PageCategory.Written | PageCategory.File | PageCategory.PfnZero),
            CategoryAnyOfMask = (ulong)(PageCategory.Present | PageCategory.Swapped),
            ReturnMask = (ulong)PageCategory.Written,
        };
        try
        {
            return ScanWithIoctl(range, arg);
        }
        catch (NativeException e) when (e.Errno == Errno.EPERM)
        {
            return null;
        }
    }

    /// <summary>
    /// Runs of pages with data (present or swapped) in <paramref name="range"/> that a userfaultfd in synchronous
    /// write-protect mode does not protect: PAGE_IS_WRITTEN is a page table entry without its uffd-wp bit, whatever the
    /// mode (checked on Linux 6.18: none right after UFFDIO_WRITEPROTECT of the whole range, exactly the pages lifted
    /// since). Testing bits only, it walks a GiB in 1-3 ms where protecting it takes hundreds.
    /// </summary>
    public List<AddressRange> ScanUnprotected(AddressRange range) => ScanWithIoctl(range, new PmScanArg
    {
        CategoryMask = (ulong)PageCategory.Written,
        CategoryAnyOfMask = (ulong)(PageCategory.Present | PageCategory.Swapped),
        ReturnMask = (ulong)PageCategory.Written,
    });

    // Present or swapped, and not the zero page, in areas whose pages are all anonymous. PAGE_IS_WRITTEN is returned
    // too (it splits runs only where a userfaultfd protects some pages and not others) for Unprotected.
    private static readonly PmScanArg AnonymousPages = new()
    {
        CategoryInverted = (ulong)PageCategory.PfnZero,
        CategoryMask = (ulong)PageCategory.PfnZero,
        CategoryAnyOfMask = (ulong)(PageCategory.Present | PageCategory.Swapped),
        ReturnMask = (ulong)(PageCategory.Present | PageCategory.Swapped | PageCategory.Written),
    };

    // Present or swapped, and neither a page-cache page nor the zero page; PAGE_IS_WRITTEN as above.
    private static readonly PmScanArg SavedPages = new()
    {
        CategoryInverted = (ulong)(PageCategory.File | PageCategory.PfnZero),
        CategoryMask = (ulong)(PageCategory.File | PageCategory.PfnZero),
        CategoryAnyOfMask = (ulong)(PageCategory.Present | PageCategory.Swapped),
        ReturnMask = (ulong)(PageCategory.Present | PageCategory.Swapped | PageCategory.Written),
    };

    private List<AddressRange> ScanWithIoctl(AddressRange range) => ScanWithIoctl(range, SavedPages);

    // The runs found, merged; with <paramref name="written"/>, the runs reported PAGE_IS_WRITTEN are added to it too.
    private List<AddressRange> ScanWithIoctl(AddressRange range, PmScanArg template, List<AddressRange>? written = null)
    {
        var result = new List<AddressRange>();
        ulong start = range.Start.Value;
        while (start < range.End.Value)
        {
            var arg = template;
            arg.Start = start;
            arg.End = range.End.Value;
            int n = PagemapScan.Scan(pagemap, ref arg, regions);
            for (int i = 0; i < n; i++)
            {
                var run = new AddressRange(regions[i].Start, regions[i].End);
                Append(result, run);
                if (written is not null && (regions[i].Categories & (ulong)PageCategory.Written) != 0)
                {
                    Append(written, run);
                }
            }
            // The kernel stops early only when the region array is full, and says in walk_end where. Otherwise the
            // walk is done, whatever walk_end says: it may be left at a point where the kernel emptied its own buffer
            // and walked on (6.18), and going on from there would report the same runs again.
            if (n < regions.Length)
            {
                break;
            }
            ulong next = Math.Max(arg.WalkEnd, regions[n - 1].End);
            if (next <= start)
            {
                break;
            }
            start = next;
        }
        return result;
    }

    private List<AddressRange> ScanPagemapFile(AddressRange range)
    {
        var result = new List<AddressRange>();
        const int batchPages = 8192;
        var entries = new ulong[batchPages];
        for (ulong page = range.Start.Value >> Page.Shift; page < range.End.Value >> Page.Shift; page += batchPages)
        {
            int count = (int)Math.Min(batchPages, (range.End.Value >> Page.Shift) - page);
            var (n, errno) = Pread.Read(pagemap, MemoryMarshal.AsBytes(entries.AsSpan(0, count)), page * 8);
            if (n != count * 8)
            {
                throw new NativeException($"read of /proc/{pagemap.Value}/pagemap", n < 0 ? errno : Errno.EIO);
            }
            for (int i = 0; i < count; i++)
            {
                ulong e = entries[i];
                if ((e & (PagemapPresent | PagemapSwapped)) != 0 && (e & PagemapFileOrSharedAnon) == 0)
                {
                    ulong address = (page + (ulong)i) << Page.Shift;
                    Append(result, new AddressRange(address, address + Page.Size));
                }
            }
        }
        return result;
    }

    private static void Append(List<AddressRange> runs, AddressRange run)
    {
        if (runs.Count > 0 && runs[^1].End == run.Start)
        {
            runs[^1] = runs[^1] with { End = run.End };
        }
        else
        {
            runs.Add(run);
        }
    }

    public void Dispose() => pagemap.Dispose();
}
