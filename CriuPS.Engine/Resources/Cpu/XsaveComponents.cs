using CriuPS.Native.Arch.X86_64;
using CriuPS.Native.Ptrace;

namespace CriuPS.Engine.Resources.Cpu;

/// <summary>
/// XSAVE state components (the bits of XCR0, of xfeatures_mask and of a thread's xstate_bv): their names, and the
/// mask CRIU 4.2 writes into cpuinfo.img.
/// </summary>
internal static class XsaveComponents
{
    /// <summary>The components CRIU knows and describes (XFEATURE_MASK_USER): x87 to AVX-512, MPX, PKRU.</summary>
    public const ulong CriuUserMask = 0x2FF;

    /// <summary>
    /// What CRIU 4.2 clears besides: its XFEATURE_MASK_SUPERVISOR is "MASK_PT | XFEATURE_HDC", the component number
    /// 10 (0b1010) where its mask was meant, so the SSE and MPX bound-register bits never reach its images either.
    /// </summary>
    private const ulong CriuClearedMask = (1UL << 8) | 10;

    private static readonly string?[] Names =
    [
        "x87", "SSE", "AVX", "MPX bound registers", "MPX bound configuration", "AVX-512 opmask", "AVX-512 ZMM_Hi256",
        "AVX-512 Hi16_ZMM", "Processor Trace", "PKRU", "PASID", "CET user state", "CET supervisor state", "HDC", "UINTR",
        "LBR", "HWP", "AMX tile config", "AMX tile data", "APX",
    ];

    /// <summary>"xsave component 9 (PKRU)": how errors name a component.</summary>
    public static string Describe(int component) =>
        component < Names.Length ? $"xsave component {component} ({Names[component]})" : $"xsave component {component}";

    public static IEnumerable<int> Bits(ulong mask)
    {
        for (int i = 0; i < 64; i++)
        {
            if ((mask & (1UL << i)) != 0)
            {
                yield return i;
            }
        }
    }

    /// <summary>
    /// The xfeatures_mask CRIU writes for a CPU whose kernel enables <paramref name="enabled"/>: the components it
    /// knows whose CPUID feature is present (a hypervisor may list a component in leaf 0xD and hide its feature),
    /// less the bits its typo clears.
    /// </summary>
    public static ulong CriuMask(ulong enabled, IReadOnlyList<uint> capability)
    {
        // CRIU's xsave_cpuid_features: the CPUID feature each of components 0-10 belongs to, as (word, bit).
        (int Word, int Bit)[] features =
        [
            (CapabilityWords.Cpuid1Edx, 0), (CapabilityWords.Cpuid1Edx, 25), (CapabilityWords.Cpuid1Ecx, 28),
            (CapabilityWords.Cpuid7Ebx, 14), (CapabilityWords.Cpuid7Ebx, 14), (CapabilityWords.Cpuid7Ebx, 16),
            (CapabilityWords.Cpuid7Ebx, 16), (CapabilityWords.Cpuid7Ebx, 16), (CapabilityWords.Cpuid7Ebx, 25),
            (CapabilityWords.Cpuid7Ecx, 3), (CapabilityWords.Cpuid6Eax, 13),
        ];
        ulong mask = enabled;
        for (int i = 0; i < features.Length; i++)
        {
            if (!CapabilityWords.Has(capability, features[i].Word, features[i].Bit))
            {
                mask &= ~(1UL << i);
            }
        }
        return mask & CriuUserMask & ~CriuClearedMask;
    }

    /// <summary>
    /// The components a saved xfeatures_mask stands for: CRIU's images (and ours, which match them) lack the SSE and
    /// MPX bound-register bits, which every x86-64 CPU and every MPX CPU has with x87 and the bound configuration.
    /// </summary>
    public static ulong Saved(ulong xfeaturesMask)
    {
        const ulong MpxBoundRegisters = 1UL << XStateLayout.MpxBndRegs, MpxBoundConfiguration = 1UL << XStateLayout.MpxBndCsr;
        return xfeaturesMask | XStateLayout.X87Mask | XStateLayout.SseMask | ((xfeaturesMask & MpxBoundConfiguration) != 0 ? MpxBoundRegisters : 0);
    }
}
