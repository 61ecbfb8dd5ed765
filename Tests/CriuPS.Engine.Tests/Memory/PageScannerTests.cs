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
    public void PolicyAllTakesTheWholeArea()
    {
        using var scanner = new PageScanner(Environment.ProcessId, usePagemapScan: true);
        var range = new AddressRange(0x10000, 0x12000);
        Assert.Equal(new[] { range }, scanner.Scan(range, PagePolicy.All));
    }
}
