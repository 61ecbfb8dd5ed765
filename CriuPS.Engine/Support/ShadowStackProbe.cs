using CriuPS.Native.Interop;

namespace CriuPS.Engine.Support;

/// <summary>Looks for the CPU's user shadow stack flag and asks the kernel for our shadow stack status.</summary>
internal sealed class ShadowStackProbe : FeatureProbe
{
    public override string Name => "ShadowStack";

    public override bool Essential => false;

    public override string Requirement => "an x86-64 CPU with CET shadow stacks (cpuinfo flag user_shstk) and Linux 6.6+ built with CONFIG_X86_USER_SHADOW_STACK (arch_prctl ARCH_SHSTK_STATUS)";

    public override string Impact => "Processes that enabled shadow stacks cannot be checkpointed.";

    /// <summary>Whether this CPU offers user shadow stacks at all: without them no area of any process is one.</summary>
    public static bool CpuHasUserShadowStacks => CpuFlag.Value;

    private static readonly Lazy<bool> CpuFlag = new(() =>
        File.ReadLines("/proc/cpuinfo").Any(l => l.StartsWith("flags", StringComparison.Ordinal) && l.Split(' ').Contains("user_shstk")));

    public override (bool, string) Check()
    {
        bool cpu = CpuHasUserShadowStacks;
        long status = Prctl.ShadowStackStatus();
        string kernel = status >= 0 ? $"ARCH_SHSTK_STATUS answers 0x{status:x}" : $"ARCH_SHSTK_STATUS failed: {Errno.Describe((int)-status)}";
        return (cpu && status >= 0, $"{(cpu ? "the CPU has user_shstk" : "the CPU flags have no user_shstk")}; {kernel}");
    }
}
