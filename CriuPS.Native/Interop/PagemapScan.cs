using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>The PAGEMAP_SCAN ioctl on /proc/PID/pagemap.</summary>
public static unsafe class PagemapScan
{
    /// <summary>_IOWR('f', 16, struct pm_scan_arg).</summary>
    public const int Request = unchecked((int)0xC0606610);

    /// <summary>Write-protect the pages reported (with userfaultfd WP-async tracking).</summary>
    public const ulong WpMatching = 1 << 0;

    /// <summary>Fail unless the range is registered for asynchronous write protection.</summary>
    public const ulong CheckWpAsync = 1 << 1;

    /// <summary>Runs one scan; returns the number of regions filled (arg.WalkEnd says where it stopped).</summary>
    public static int Scan(FileDescriptor pagemap, ref PmScanArg arg, Span<PageRegion> regions)
    {
        fixed (PageRegion* vec = regions)
        fixed (PmScanArg* a = &arg)
        {
            a->Size = (ulong)sizeof(PmScanArg);
            a->Vec = (ulong)vec;
            a->VecLen = (ulong)regions.Length;
            int n = LibC.ioctl(pagemap.Value, Request, a);
            if (n < 0)
            {
                throw new NativeException("ioctl(PAGEMAP_SCAN)", LibC.errno);
            }
            return n;
        }
    }

    /// <summary>Whether this kernel has PAGEMAP_SCAN (an empty scan of our own pagemap succeeds).</summary>
    public static bool IsSupported()
    {
        try
        {
            using var pagemap = FileDescriptor.Open("/proc/self/pagemap", O.RDONLY);
            var arg = new PmScanArg { Start = 0x10000, End = 0x10000, CategoryMask = (ulong)PageCategory.Present, ReturnMask = (ulong)PageCategory.Present };
            Span<PageRegion> one = stackalloc PageRegion[1];
            Scan(pagemap, ref arg, one);
            return true;
        }
        catch (NativeException)
        {
            return false;
        }
    }
}
