using CriuPS.Native.Interop;

namespace CriuPS.Engine.Support;

/// <summary>Opens a userfaultfd and asks for asynchronous write protection, then closes it.</summary>
internal sealed class UffdWriteProtectProbe : FeatureProbe
{
    public override string Name => "UffdWriteProtectAsync";

    public override bool Essential => false;

    public override string Requirement => "userfaultfd with UFFD_FEATURE_WP_ASYNC and UFFD_FEATURE_WP_UNPOPULATED (Linux 6.7+); UFFD_USER_MODE_ONLY (5.11+) or CAP_SYS_PTRACE";

    public override string Impact => "Memory writes cannot be tracked between checkpoints, which incremental checkpoints need (CriuPS takes full checkpoints today).";

    public override (bool, string) Check()
    {
        int errno = Userfaultfd.TryHandshake(Userfaultfd.FeatureWpAsync | Userfaultfd.FeatureWpUnpopulated, out string call);
        return errno == 0
            ? (true, "userfaultfd accepted UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED")
            : (false, $"{call} failed: {Errno.Describe(errno)} (kernel {KernelFacts.Release})");
    }
}
