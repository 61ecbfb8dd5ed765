using System.Runtime.Intrinsics.X86;

namespace CriuPS.Native.Cpu;

/// <summary>
/// The CPUID instruction, as this process sees it (a hypervisor may hide features of the real CPU; the kernel never
/// changes what user space reads). Leaves above the highest one the CPU reports return whatever the CPU returns for
/// them: callers check the limits (leaf 0 and 0x80000000) first.
/// </summary>
public static class CpuId
{
    public static CpuIdRegisters Read(uint leaf, uint subleaf = 0)
    {
        if (!X86Base.IsSupported)
        {
            throw new PlatformNotSupportedException("CriuPS needs an x86-64 CPU");
        }
        var (eax, ebx, ecx, edx) = X86Base.CpuId((int)leaf, (int)subleaf);
        return new CpuIdRegisters((uint)eax, (uint)ebx, (uint)ecx, (uint)edx);
    }
}
