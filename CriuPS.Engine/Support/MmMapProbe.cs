using CriuPS.Native.Interop;

namespace CriuPS.Engine.Support;

/// <summary>Asks the size of struct prctl_mm_map, which only kernels that can take PR_SET_MM_MAP answer.</summary>
internal sealed class MmMapProbe : FeatureProbe
{
    public override string Name => "PrSetMmMap";

    public override bool Essential => true;

    public override string Requirement => "prctl(PR_SET_MM, PR_SET_MM_MAP) (Linux 3.18+ with CONFIG_CHECKPOINT_RESTORE); replacing the executable link needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN";

    public override string Impact => "Restore-Process cannot set the restored address space's code, data, heap, stack, arguments, environment, auxiliary vector and executable.";

    public override (bool, string) Check()
    {
        long size = Prctl.MmMapSize();
        return size > 0
            ? (true, $"PR_SET_MM_MAP_SIZE answers {size} bytes")
            : (false, $"prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE) failed: {Errno.Describe((int)-size)} (kernel {KernelFacts.Release})");
    }
}
