using CriuPS.Engine.Resources.Memory;

namespace CriuPS.Engine.Support;

/// <summary>Tracks the writes to two pages of our own memory, as pre-dumps track a process's (see <see cref="WriteTracking.SelfTest"/>).</summary>
internal sealed class WriteTrackingProbe : FeatureProbe
{
    public override string Name => "WriteTracking";

    public override bool Essential => false;

    public override string Requirement =>
        "userfaultfd with UFFD_FEATURE_WP_ASYNC and UFFD_FEATURE_WP_UNPOPULATED, and PAGEMAP_SCAN's PAGE_IS_WRITTEN (Linux 6.7+); UFFD_USER_MODE_ONLY (5.11+) or CAP_SYS_PTRACE";

    public override string Impact => "Checkpoint-Process -PreDump is refused, and every checkpoint copies all of the memory while the process is frozen.";

    public override (bool, string) Check() => WriteTracking.SelfTest();
}
