using CriuPS.Native.Cpu;

namespace CriuPS.Engine.Resources.Cpu;

/// <summary>
/// The CPUID feature words of cpuinfo.img (capability_ver 2), read as CRIU 4.2 reads them (compel_cpuid): one word
/// per CPUID register that lists features, in the order of the kernel's cpufeatures words when CRIU copied them.
/// The order is CRIU's image format, not the kernel's of today (whose words 11, 12 and 16 hold other leaves).
/// Version 1 images carry the first 12 words.
/// </summary>
internal static class CapabilityWords
{
    public const uint Version = 2;
    public const int Count = 19, CountVersion1 = 12;

    public const int Cpuid1Edx = 0, Cpuid80000001Edx = 1, Linux1 = 3, Cpuid1Ecx = 4, Cpuid80000001Ecx = 6, Cpuid7Ebx = 9,
        CpuidDSub1Eax = 10, Cpuid7Ecx = 11, CpuidFSub1Edx = 12, Cpuid80000008Ebx = 13, Cpuid6Eax = 14, Cpuid8000000AEdx = 15,
        CpuidFEdx = 16, Cpuid80000007Ebx = 17, Cpuid7Edx = 18;

    /// <summary>Features the kernel (and CRIU) synthesize in word 3 rather than read from a CPUID leaf.</summary>
    public const int RepGood = 16, Nopl = 20, CpuidPresent = 25;

    /// <summary>Bits the reading itself depends on: XSAVE (leaf 1 ECX) and ERMS (leaf 7 EBX).</summary>
    public const int XsaveBit = 26, ErmsBit = 9;

    /// <summary>The number of words an image of capability version <paramref name="version"/> carries, or null for a version CRIU 4.2 does not know.</summary>
    public static int? CountFor(uint version) => version switch { 1 => CountVersion1, Version => Count, _ => null };

    public static bool Has(IReadOnlyList<uint> words, int word, int bit) => word < words.Count && (words[word] & (1u << bit)) != 0;

    /// <summary>
    /// The words of the CPU <paramref name="cpuid"/> answers for, with CRIU's adjustments for the vendor and family
    /// (<paramref name="signature"/> is leaf 1's EAX), so that an image of ours compares with CRIU's run-time view.
    /// </summary>
    public static uint[] Read(Func<uint, uint, CpuIdRegisters> cpuid, uint maxLeaf, uint maxExtendedLeaf, CpuVendor vendor, uint family, uint signature)
    {
        var words = new uint[Count];
        if (maxLeaf >= 1)
        {
            var leaf1 = cpuid(1, 0);
            words[Cpuid1Edx] = leaf1.Edx;
            words[Cpuid1Ecx] = leaf1.Ecx;
        }
        if (maxLeaf >= 6)
        {
            words[Cpuid6Eax] = cpuid(6, 0).Eax;
        }
        if (maxLeaf >= 7)
        {
            var leaf7 = cpuid(7, 0);
            words[Cpuid7Ebx] = leaf7.Ebx;
            words[Cpuid7Ecx] = leaf7.Ecx;
            words[Cpuid7Edx] = leaf7.Edx;
        }
        if (maxLeaf >= 0xD)
        {
            words[CpuidDSub1Eax] = cpuid(0xD, 1).Eax;
        }
        if (maxLeaf >= 0xF)
        {
            words[CpuidFEdx] = cpuid(0xF, 0).Edx;
            const int CqmLlc = 1;
            if (Has(words, CpuidFEdx, CqmLlc))
            {
                words[CpuidFSub1Edx] = cpuid(0xF, 1).Edx;
            }
        }
        if ((maxExtendedLeaf & 0xFFFF0000) == 0x80000000 && maxExtendedLeaf >= 0x80000001)
        {
            var extended = cpuid(0x80000001, 0);
            words[Cpuid80000001Ecx] = extended.Ecx;
            words[Cpuid80000001Edx] = extended.Edx;
        }
        if (maxExtendedLeaf >= 0x80000007)
        {
            words[Cpuid80000007Ebx] = cpuid(0x80000007, 0).Ebx;
        }
        if (maxExtendedLeaf >= 0x8000000A)
        {
            words[Cpuid8000000AEdx] = cpuid(0x8000000A, 0).Edx;
        }
        if (maxExtendedLeaf >= 0x80000008)
        {
            words[Cpuid80000008Ebx] = cpuid(0x80000008, 0).Ebx;
        }

        // Every x86-64 CPU has CPUID and NOPL.
        Set(words, Linux1, CpuidPresent, true);
        Set(words, Linux1, Nopl, true);
        if (maxLeaf < 0xD)
        {
            Set(words, Cpuid1Ecx, XsaveBit, false);
        }
        // The kernel's early vendor fixes that CRIU copies: whether REP string instructions are fast, and AMD's
        // leaf 1 bit 31 (which is not 3DNow!, whatever old documents say).
        switch (vendor)
        {
            case CpuVendor.Intel when family == 15:
                Set(words, Linux1, RepGood, false);
                Set(words, Cpuid7Ebx, ErmsBit, false);
                break;
            case CpuVendor.Intel when family == 6:
                Set(words, Linux1, RepGood, true);
                break;
            case CpuVendor.Amd:
                Set(words, Cpuid1Edx, 31, false);
                bool fastRep = family >= 0x10 || (family == 0xF && ((signature >= 0x0F48 && signature < 0x0F50) || signature >= 0x0F58));
                if (fastRep)
                {
                    Set(words, Linux1, RepGood, true);
                }
                break;
        }
        return words;
    }

    private static void Set(uint[] words, int word, int bit, bool on)
    {
        if (on)
        {
            words[word] |= 1u << bit;
        }
        else
        {
            words[word] &= ~(1u << bit);
        }
    }
}

/// <summary>The CPU vendors CRIU tells apart (Hygon's CPUs are AMD's design).</summary>
internal enum CpuVendor
{
    Other,
    Intel,
    Amd,
}
