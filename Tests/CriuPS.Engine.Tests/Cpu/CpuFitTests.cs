using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Cpu;

namespace CriuPS.Engine.Tests.Cpu;

/// <summary>What an image needs from the CPU, on constructed descriptions: a subset fits, every missing feature is named.</summary>
public class CpuFitTests
{
    private const ulong Legacy = 0x3, Avx = 1UL << 2, Avx512 = 0xe0, Pkru = 1UL << 9;

    /// <summary>A CPU with every feature of the words, whose kernel enables x87 to AVX-512 (XCR0 0xe7) in 2432 bytes.</summary>
    private static CpuinfoX86Entry Cpu(ulong xfeatures = 0xe5, uint xsaveSize = 2432)
    {
        var cpu = new CpuinfoX86Entry
        {
            VendorId = CpuinfoX86Entry.Types.Vendor.Intel, CpuFamily = 6, Model = 143, Stepping = 8, CapabilityVer = 2,
            XfeaturesMask = xfeatures, XsaveSize = xsaveSize, XsaveSizeMax = xsaveSize,
        };
        cpu.Capability.Add(Enumerable.Repeat(uint.MaxValue, CapabilityWords.Count));
        return cpu;
    }

    private static CpuinfoX86Entry Without(CpuinfoX86Entry cpu, params string[] features)
    {
        var copy = cpu.Clone();
        foreach (var feature in InstructionFeatures.All.Where(f => features.Contains(f.Name)))
        {
            copy.Capability[feature.Word] &= ~(1u << feature.Bit);
        }
        return copy;
    }

    private static List<string> Missing(CpuinfoX86Entry? saved, CpuinfoX86Entry here, ulong enabled = Legacy | Avx | Avx512, params (int Tid, ulong InUse)[] threads) =>
        CpuFit.Missing(saved is null ? [] : [saved], threads.Select(t => new ThreadComponents(t.Tid, t.InUse)).ToList(), here, enabled);

    [Fact]
    public void AnImageOfThisCpuFits()
    {
        Assert.Empty(Missing(Cpu(), Cpu(), threads: (100, Legacy | Avx | Avx512)));
    }

    [Fact]
    public void EveryInstructionFeatureThisCpuLacksIsNamed()
    {
        var here = Without(Cpu(), "avx512f", "avx512bw", "sha_ni", "fma");

        Assert.Equal(["fma", "avx512f", "sha_ni", "avx512bw"], Missing(Cpu(), here));
    }

    [Fact]
    public void BitsThatAreNoInstructionsAreNoReasonToRefuse()
    {
        var here = Cpu();
        here.Capability[CapabilityWords.Cpuid1Ecx] &= ~((1u << 31) | (1u << 3) | (1u << 5)); // hypervisor, monitor, vmx
        here.Capability[CapabilityWords.Cpuid7Ebx] &= ~((1u << 9) | (1u << 14));            // erms, mpx
        here.Capability[CapabilityWords.Cpuid7Ecx] &= ~(1u << 13);                          // tme
        here.Capability[CapabilityWords.Linux1] &= ~(1u << CapabilityWords.RepGood);
        for (int word = 0; word < CapabilityWords.Count; word++)
        {
            if (!InstructionFeatures.All.Any(f => f.Word == word))
            {
                here.Capability[word] = 0; // words of power management, virtualization, cache QoS
            }
        }

        Assert.Empty(Missing(Cpu(), here));
    }

    [Fact]
    public void AnImageThatNeedsLessFits()
    {
        // Taken on an AVX2 CPU: no AVX-512 instructions, no AVX-512 state, a smaller XSAVE area.
        var saved = Without(Cpu(xfeatures: 0x5, xsaveSize: 832), InstructionFeatures.All.Where(f => f.Name.StartsWith("avx512", StringComparison.Ordinal)).Select(f => f.Name).ToArray());

        Assert.Empty(Missing(saved, Cpu(), threads: (100, Legacy | Avx)));
    }

    [Fact]
    public void XsaveComponentsTheKernelDoesNotEnableAreNamed()
    {
        Assert.Equal(["xsave component 9 (PKRU)"], Missing(Cpu(xfeatures: 0xe5 | Pkru), Cpu()));
        Assert.Equal(["xsave component 5 (AVX-512 opmask)", "xsave component 6 (AVX-512 ZMM_Hi256)", "xsave component 7 (AVX-512 Hi16_ZMM)"],
            Missing(Cpu(), Cpu(), enabled: Legacy | Avx));
    }

    [Fact]
    public void StateAThreadHasInUseIsNeededWithOrWithoutADescription()
    {
        ulong amxConfig = 1UL << 17;
        Assert.Equal(["xsave component 17 (AMX tile config), in use by thread 4242 (core-4242.img) and 1 other(s)"],
            Missing(null, Cpu(), threads: [(4242, Legacy | amxConfig), (4243, amxConfig), (4244, Legacy)]));
        Assert.Equal(["xsave component 62, in use by thread 1 (core-1.img)"], Missing(Cpu(), Cpu(), threads: (1, 1UL << 62)));
    }

    [Fact]
    public void ALargerXsaveAreaIsNamed()
    {
        Assert.Equal(["an XSAVE area of 2696 bytes (this CPU's holds 2432)"], Missing(Cpu(xsaveSize: 2696), Cpu()));
    }

    [Fact]
    public void AVersionOneImageSaysNothingOfTheWordsItLacks()
    {
        var saved = Cpu();
        saved.CapabilityVer = 1;
        saved.Capability.Clear();
        saved.Capability.Add(Enumerable.Repeat(uint.MaxValue, CapabilityWords.CountVersion1));
        var here = Cpu();
        here.Capability.Clear();
        here.Capability.Add(new uint[CapabilityWords.Count]);

        var missing = Missing(saved, here);

        Assert.Equal(InstructionFeatures.All.Where(f => f.Word < CapabilityWords.CountVersion1).Select(f => f.Name), missing);
        Assert.DoesNotContain("clzero", missing);
        Assert.DoesNotContain("avx512_fp16", missing);
    }
}
