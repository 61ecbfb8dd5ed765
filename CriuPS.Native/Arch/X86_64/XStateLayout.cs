using CriuPS.Native.Cpu;
using CriuPS.Native.Interop;

namespace CriuPS.Native.Arch.X86_64;

/// <summary>
/// Where each XSAVE state component lives in the NT_X86_XSTATE regset (standard, non-compacted format), as this
/// CPU reports in CPUID leaf 0xD. Offsets differ between CPUs, so they are never hard-coded.
/// </summary>
public sealed class XStateLayout
{
    public const int LegacyAreaSize = 512;
    public const int HeaderSize = 64;

    /// <summary>Component numbers of the XSAVE feature bitmap.</summary>
    public const int X87 = 0, Sse = 1, Avx = 2, MpxBndRegs = 3, MpxBndCsr = 4, Avx512Opmask = 5, Avx512ZmmHi256 = 6, Avx512Hi16Zmm = 7, Pkru = 9;

    public const ulong X87Mask = 1UL << X87, SseMask = 1UL << Sse;

    private readonly Dictionary<int, (int Offset, int Size)> components;

    /// <summary>A layout of the given components: another CPU's, in tests.</summary>
    internal XStateLayout(ulong supported, int size, Dictionary<int, (int Offset, int Size)> components)
    {
        SupportedFeatures = supported;
        Size = size;
        this.components = components;
    }

    public static XStateLayout Current { get; } = Probe();

    /// <summary>
    /// The user state components the kernel enabled on this CPU (XCR0): what glibc sees with XGETBV and what
    /// PTRACE_SETREGSET accepts.
    /// </summary>
    public ulong SupportedFeatures { get; }

    /// <summary>Bytes of the standard-format XSAVE area for the enabled features.</summary>
    public int Size { get; }

    /// <summary>A buffer large enough for any regset the kernel returns.</summary>
    public int BufferSize => Math.Max(Size, 4096);

    public bool Has(int component) => components.ContainsKey(component);

    public (int Offset, int Size) Component(int component) =>
        components.TryGetValue(component, out var c) ? c : throw new InvalidOperationException($"XSAVE component {component} is not enabled on this CPU");

    private static XStateLayout Probe()
    {
        var leaf = CpuId.Read(0xD, 0);
        // CPUID lists what the CPU supports; the kernel may enable less (a component it does not handle, or one
        // turned off at boot). Linux before 5.16 cannot be asked: CPUID's list stands in for its answer.
        long enabled = Prctl.XStateComponentsEnabled();
        ulong supported = enabled >= 0 ? (ulong)enabled : leaf.Eax | ((ulong)leaf.Edx << 32);
        var components = new Dictionary<int, (int, int)>();
        for (int i = 2; i < 64; i++)
        {
            if ((supported & (1UL << i)) == 0)
            {
                continue;
            }
            var component = CpuId.Read(0xD, (uint)i);
            components[i] = ((int)component.Ebx, (int)component.Eax);
        }
        // EBX: the size of the standard-format area for what XCR0 enables.
        return new XStateLayout(supported, (int)leaf.Ebx, components);
    }
}
