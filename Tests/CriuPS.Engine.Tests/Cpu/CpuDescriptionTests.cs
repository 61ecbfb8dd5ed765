using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Cpu;
using CriuPS.Engine.Tests.Images;
using CriuPS.Native.Cpu;
using CriuPS.Native.Ptrace;

namespace CriuPS.Engine.Tests.Cpu;

/// <summary>cpuinfo.img is written as CRIU 4.2 writes it, from the CPUID leaves CRIU reads.</summary>
public sealed class CpuDescriptionTests : IDisposable
{
    private readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    /// <summary>
    /// The CPUID leaves of a machine of this kind (an AMD Turin-like vCPU with AVX-512, no PKRU, kernel 6.18), and
    /// the cpuinfo.img that "criu cpuinfo dump" of CRIU 4.2 (built from the v4.2 tag) wrote on it: the mask is 0xe5,
    /// not XCR0's 0xe7, because CRIU's typo clears the SSE bit.
    /// </summary>
    private static readonly Dictionary<(uint Leaf, uint Subleaf), CpuIdRegisters> TurinLeaves = new()
    {
        [(0x0, 0)] = new(0x0000000d, 0x68747541, 0x444d4163, 0x69746e65),
        [(0x1, 0)] = new(0x00b00f21, 0x5afe0800, 0xfed83203, 0x178bfbff),
        [(0x6, 0)] = new(0x00000004, 0x00000000, 0x00000000, 0x00000000),
        [(0x7, 0)] = new(0x00000001, 0xf1bb03a9, 0x18005f42, 0x00000110),
        [(0xd, 0)] = new(0x000000e7, 0x00000980, 0x00000980, 0x00000000),
        [(0xd, 1)] = new(0x00000007, 0x00000980, 0x00000000, 0x00000000),
        [(0x80000000, 0)] = new(0x80000021, 0x68747541, 0x444d4163, 0x69746e65),
        [(0x80000001, 0)] = new(0x00b00f21, 0x40000000, 0x440001f1, 0x25d3fbff),
        [(0x80000002, 0)] = new(0x6469784f, 0x69562065, 0x61757472, 0x7554206c),
        [(0x80000003, 0)] = new(0x2d6e6972, 0x656b696c, 0x6f725020, 0x73736563),
        [(0x80000004, 0)] = new(0x2020726f, 0x20202020, 0x20202020, 0x00202020),
        [(0x80000007, 0)] = new(0x00000000, 0x00000000, 0x00000000, 0x00000100),
        [(0x80000008, 0)] = new(0x00003030, 0x20000005, 0x00000000, 0x00000000),
        [(0x8000000a, 0)] = new(0x00000000, 0x00000000, 0x00000000, 0x00000000),
    };

    private static readonly byte[] CriuTurinImage =
    [
        0x19, 0x43, 0x56, 0x54, 0x13, 0x40, 0x40, 0x61, 0x8d, 0x00, 0x00, 0x00,
        0x0a, 0x8a, 0x01, 0x08, 0x02, 0x10, 0x1a, 0x18, 0x02, 0x20, 0x01, 0x28,
        0x02, 0x30, 0xff, 0xf7, 0xaf, 0xbc, 0x01, 0x30, 0xff, 0xf7, 0xcf, 0xae,
        0x02, 0x30, 0x00, 0x30, 0x80, 0x80, 0xc4, 0x10, 0x30, 0x83, 0xe4, 0xe0,
        0xf6, 0x0f, 0x30, 0x00, 0x30, 0xf1, 0x83, 0x80, 0xa0, 0x04, 0x30, 0x00,
        0x30, 0x00, 0x30, 0xa9, 0x87, 0xec, 0x8d, 0x0f, 0x30, 0x07, 0x30, 0xc2,
        0xbe, 0x81, 0xc0, 0x01, 0x30, 0x00, 0x30, 0x85, 0x80, 0x80, 0x80, 0x02,
        0x30, 0x04, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00, 0x30, 0x90, 0x02, 0x3a,
        0x2f, 0x4f, 0x78, 0x69, 0x64, 0x65, 0x20, 0x56, 0x69, 0x72, 0x74, 0x75,
        0x61, 0x6c, 0x20, 0x54, 0x75, 0x72, 0x69, 0x6e, 0x2d, 0x6c, 0x69, 0x6b,
        0x65, 0x20, 0x50, 0x72, 0x6f, 0x63, 0x65, 0x73, 0x73, 0x6f, 0x72, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x40, 0xe5, 0x01, 0x48, 0x80, 0x13, 0x50, 0x80, 0x13,
    ];

    private static CpuIdRegisters Turin(uint leaf, uint subleaf) =>
        TurinLeaves.TryGetValue((leaf, subleaf), out var registers) ? registers : throw new InvalidOperationException($"CRIU does not read leaf 0x{leaf:x}.{subleaf} on this CPU");

    [Fact]
    public void TheDescriptionOfACpuIsByteForByteWhatCriuWritesForIt()
    {
        var entry = new CpuinfoEntry();
        entry.X86Entry.Add(CpuDescription.Describe(Turin, enabledComponents: 0xe7));
        ImageWriter.WriteSingle(temp.Path, ImageTypes.Cpuinfo, null, entry);

        Assert.Equal(CriuTurinImage, File.ReadAllBytes(temp.PathOf("cpuinfo.img")));
    }

    [Fact]
    public void CriusImageReadsAsTheCpuItDescribes()
    {
        File.WriteAllBytes(temp.PathOf("cpuinfo.img"), CriuTurinImage);

        var cpu = Assert.Single(ImageReader.ReadSingle<CpuinfoEntry>(temp.Path, ImageTypes.Cpuinfo, null).X86Entry);

        Assert.Equal("Oxide Virtual Turin-like Processor (family 26, model 2, stepping 1)", CpuDescription.Display(cpu));
        Assert.Equal(CpuinfoX86Entry.Types.Vendor.Amd, cpu.VendorId);
        Assert.Equal(2u, cpu.CapabilityVer);
        Assert.Equal(19, cpu.Capability.Count);
        Assert.Equal(0xe5UL, cpu.XfeaturesMask);
        Assert.Equal(2432u, cpu.XsaveSize);
        Assert.Equal(2432u, cpu.XsaveSizeMax);
        // CRIU's synthesized word: CPUID, NOPL and REP_GOOD (AMD family 0x10 and later).
        Assert.Equal((1u << 25) | (1u << 20) | (1u << 16), cpu.Capability[CapabilityWords.Linux1]);
    }

    [Theory]
    [InlineData(0x2e7UL, 0x2e5UL)]          // PKRU kept; SSE cleared as CRIU's typo clears it
    [InlineData(0x1fUL, 0x15UL)]            // MPX: the bound registers cleared by the same typo, the configuration kept
    [InlineData(0x600e7UL, 0xe5UL)]         // AMX tiles: not components CRIU knows
    public void TheMaskIsCriusView(ulong enabled, ulong written)
    {
        var words = new uint[CapabilityWords.Count];
        Array.Fill(words, uint.MaxValue);

        Assert.Equal(written, XsaveComponents.CriuMask(enabled, words));
    }

    [Fact]
    public void AComponentWhoseCpuidFeatureIsHiddenIsLeftOut()
    {
        var words = new uint[CapabilityWords.Count];
        Array.Fill(words, uint.MaxValue);
        words[CapabilityWords.Cpuid7Ebx] &= ~(1u << 16); // avx512f

        Assert.Equal(0x5UL, XsaveComponents.CriuMask(0xe7, words));
    }

    [Fact]
    public void ThisCpusWordsHoldTheFeaturesTheKernelListsInProcCpuinfo()
    {
        var flags = File.ReadLines("/proc/cpuinfo").First(l => l.StartsWith("flags", StringComparison.Ordinal))
            .Split(':')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        var cpu = CpuDescription.Current;

        var listed = InstructionFeatures.All.Where(f => flags.Contains(f.Name)).ToList();
        Assert.True(listed.Count >= 20, $"only {listed.Count} of the instruction features are in /proc/cpuinfo: their names are wrong");
        Assert.All(listed, f => Assert.True(CapabilityWords.Has(cpu.Capability, f.Word, f.Bit), $"{f.Name} is in /proc/cpuinfo but not at word {f.Word} bit {f.Bit}"));
        Assert.Equal((uint)XStateLayout.Current.Size, cpu.XsaveSize);
        Assert.Equal(XsaveComponents.CriuMask(XStateLayout.Current.SupportedFeatures, cpu.Capability), cpu.XfeaturesMask);
    }

    [Fact]
    public void EachInstructionFeatureHasOneBitAndOneName()
    {
        Assert.Equal(InstructionFeatures.All.Count, InstructionFeatures.All.Select(f => (f.Word, f.Bit)).Distinct().Count());
        Assert.Equal(InstructionFeatures.All.Count, InstructionFeatures.All.Select(f => f.Name).Distinct().Count());
        Assert.All(InstructionFeatures.All, f => Assert.InRange(f.Word, 0, CapabilityWords.Count - 1));
    }
}
