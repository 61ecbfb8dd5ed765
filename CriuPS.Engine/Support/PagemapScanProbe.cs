using CriuPS.Native.Interop;

namespace CriuPS.Engine.Support;

/// <summary>An empty PAGEMAP_SCAN of our own pagemap.</summary>
internal sealed class PagemapScanProbe : FeatureProbe
{
    public override string Name => "PagemapScan";

    public override bool Essential => false;

    public override string Requirement => "the PAGEMAP_SCAN ioctl on /proc/PID/pagemap (Linux 6.7+)";

    public override string Impact => "Checkpoints find the pages in use by reading /proc/PID/pagemap entry by entry instead: slower for large processes.";

    public override (bool, string) Check() => PagemapScan.IsSupported()
        ? (true, "an ioctl(PAGEMAP_SCAN) of /proc/self/pagemap succeeds")
        : (false, $"ioctl(PAGEMAP_SCAN) is refused (kernel {KernelFacts.Release})");
}
