using CriuPS.Engine.Resources.Memory;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using Tmds.Linux;

namespace CriuPS.Engine.Tests.Memory;

public unsafe class PageScannerTests
{
    private const int Pages = 64;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void FindsExactlyTheWrittenAnonymousPages(bool usePagemapScan)
    {
        if (usePagemapScan)
        {
            Assert.True(PagemapScan.IsSupported(), "this kernel is expected to have PAGEMAP_SCAN");
        }
        var area = (byte*)LibC.mmap(null, Pages * Page.Size, (int)(Mman.PROT_READ | Mman.PROT_WRITE), (int)(Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS), -1, 0);
        Assert.True(area != (byte*)-1);
        try
        {
            foreach (int page in new[] { 0, 5, 6, 7, 8, 9, 63 })
            {
                area[page * Page.Size] = 1;
            }
            var start = new Address((ulong)area);
            using var scanner = new PageScanner(Environment.ProcessId, usePagemapScan);
            var runs = scanner.Scan(new AddressRange(start, start + new ByteCount(Pages * Page.Size)), PagePolicy.Private);
            Assert.Equal(
                new[] { (0, 1), (5, 5), (63, 1) },
                runs.Select(r => ((int)((r.Start - start).Value / Page.Size), (int)r.Pages.Value)).ToArray());
        }
        finally
        {
            LibC.munmap(area, Pages * Page.Size);
        }
    }

    [Fact]
    public void ManyRunsComeOnceEachInAddressOrder()
    {
        // More runs than the kernel buffers in one go (512): it walks on internally, and its walk_end is then not
        // where the walk ended (6.18 leaves it at the last internal stop), so a scan that trusted it repeated runs.
        const int pages = 3000;
        var area = (byte*)LibC.mmap(null, pages * Page.Size, (int)(Mman.PROT_READ | Mman.PROT_WRITE), (int)(Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS), -1, 0);
        Assert.True(area != (byte*)-1);
        try
        {
            for (int page = 0; page < pages; page += 3)
            {
                area[page * Page.Size] = 1;
            }
            var start = new Address((ulong)area);
            using var scanner = new PageScanner(Environment.ProcessId, usePagemapScan: true);
            var runs = scanner.Scan(new AddressRange(start, start + new ByteCount(pages * Page.Size)), PagePolicy.Private);
            Assert.Equal(Enumerable.Range(0, pages / 3).Select(i => i * 3), runs.Select(r => (int)((r.Start - start).Value / Page.Size)));
            Assert.All(runs, r => Assert.Equal(1UL, r.Pages.Value));
        }
        finally
        {
            LibC.munmap(area, pages * Page.Size);
        }
    }

    [Fact]
    public void AdjacentAreasScannedTogetherGetWhatEachWouldGetAlone()
    {
        // Three adjacent areas (different protections, so three VMAs) with runs written across their boundaries, and
        // a fourth whose pages are all taken: the batched scan must hand each area exactly its own runs.
        var area = (byte*)LibC.mmap(null, Pages * Page.Size, (int)(Mman.PROT_READ | Mman.PROT_WRITE), (int)(Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS), -1, 0);
        Assert.True(area != (byte*)-1);
        try
        {
            foreach (int page in new[] { 0, 14, 15, 16, 17, 30, 31, 32, 33, 40, 63 })
            {
                area[page * Page.Size] = 1;
            }
            // Pages 16..31 read-only: the area splits into [0, 16) rw, [16, 32) r, [32, 48) rw, [48, 64) rw.
            Assert.Equal(0, LibC.mprotect(area + 16 * Page.Size, 16 * Page.Size, (int)Mman.PROT_READ));
            var start = new Address((ulong)area);
            AddressRange PagesAt(int first, int count) => new(start + new ByteCount((ulong)first * Page.Size), start + new ByteCount((ulong)(first + count) * Page.Size));
            // The third is said to hold only anonymous pages (it does): scanned apart, with the cheaper test, alike.
            var areas = new List<(AddressRange, PagePolicy, bool)>
            {
                (PagesAt(0, 16), PagePolicy.Private, false), (PagesAt(16, 16), PagePolicy.Private, false), (PagesAt(32, 16), PagePolicy.Private, true), (PagesAt(48, 16), PagePolicy.All, false),
            };
            using var scanner = new PageScanner(Environment.ProcessId, usePagemapScan: true);
            var together = scanner.Scan(areas);
            var alone = areas.Select(a => scanner.Scan(a.Item1, a.Item2)).ToList();
            Assert.Equal(alone.Select(r => r.ToArray()), together.Select(r => r.ToArray()));
            Assert.Equal(new[] { PagesAt(0, 1), PagesAt(14, 2) }, together[0]);
            Assert.Equal(new[] { PagesAt(16, 2), PagesAt(30, 2) }, together[1]);
            Assert.Equal(new[] { PagesAt(32, 2), PagesAt(40, 1) }, together[2]);
            Assert.Equal(new[] { PagesAt(48, 16) }, together[3]);
        }
        finally
        {
            LibC.munmap(area, Pages * Page.Size);
        }
    }

    [Fact]
    public void AreasScannedTogetherTellTheUnprotectedPages()
    {
        // A background checkpoint protects again at the freeze the planned pages without a write-protect bit, known
        // from the scan that planned them (no second walk): pages 0..63 protected by a userfaultfd in synchronous
        // mode, then 5..9 and 40 let go; an area next to it, not registered, is unprotected throughout.
        var area = (byte*)LibC.mmap(null, 2 * Pages * Page.Size, (int)(Mman.PROT_READ | Mman.PROT_WRITE), (int)(Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS), -1, 0);
        Assert.True(area != (byte*)-1);
        try
        {
            for (int page = 0; page < 2 * Pages; page++)
            {
                area[page * Page.Size] = 1;
            }
            var start = new Address((ulong)area);
            AddressRange PagesAt(int first, int count) => new(start + new ByteCount((ulong)first * Page.Size), start + new ByteCount((ulong)(first + count) * Page.Size));
            using var uffd = Userfaultfd.Create((ulong)(O.CLOEXEC | O.NONBLOCK) | Userfaultfd.UserModeOnly);
            Userfaultfd.Handshake(uffd, 0);
            Assert.Equal(0, Userfaultfd.TryRegisterWriteProtect(uffd, PagesAt(0, Pages)));
            Userfaultfd.WriteProtect(uffd, PagesAt(0, Pages));
            Assert.Equal(0, Userfaultfd.TryUnprotect(uffd, PagesAt(5, 5)));
            Assert.Equal(0, Userfaultfd.TryUnprotect(uffd, PagesAt(40, 1)));
            using var scanner = new PageScanner(Environment.ProcessId, usePagemapScan: true);
            var found = scanner.Scan(new List<(AddressRange, PagePolicy, bool)> { (PagesAt(0, Pages), PagePolicy.Private, true), (PagesAt(Pages, Pages), PagePolicy.Private, true) });
            Assert.Equal(new[] { PagesAt(0, Pages) }, found[0]); // runs of pages to save are not split by protection
            Assert.Equal(new[] { PagesAt(5, 5), PagesAt(40, 1) }, scanner.Unprotected.Within(PagesAt(0, Pages)));
            Assert.Equal(new[] { PagesAt(6, 2) }, scanner.Unprotected.Within(PagesAt(6, 2)));
            Assert.Equal(new[] { PagesAt(Pages, Pages) }, scanner.Unprotected.Within(PagesAt(Pages, Pages)));
            Assert.Null(scanner.Unprotected.Within(PagesAt(Pages, Pages + 1))); // beyond what was scanned: not known
        }
        finally
        {
            LibC.munmap(area, 2 * Pages * Page.Size);
        }
    }

    [Fact]
    public void UnionSortsAndMergesRanges()
    {
        var union = SortedRanges.Union(new List<AddressRange> { new(0x5000, 0x6000), new(0x1000, 0x3000), new(0x2000, 0x4000), new(0x4000, 0x4000), new(0x4000, 0x5000), new(0x8000, 0x9000) });
        Assert.Equal(new[] { new AddressRange(0x1000, 0x6000), new AddressRange(0x8000, 0x9000) }, union);
    }

    [Fact]
    public void PolicyAllTakesTheWholeArea()
    {
        using var scanner = new PageScanner(Environment.ProcessId, usePagemapScan: true);
        var range = new AddressRange(0x10000, 0x12000);
        Assert.Equal(new[] { range }, scanner.Scan(range, PagePolicy.All));
    }
}
