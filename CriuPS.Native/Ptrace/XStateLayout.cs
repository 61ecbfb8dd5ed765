using System.Runtime.Intrinsics.X86;

namespace CriuPS.Native.Ptrace;

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

    private XStateLayout(ulong supported, int size, Dictionary<int, (int Offset, int Size)> components)
    {
        SupportedFeatures = supported;
        Size = size;
        this.components = components;
    }

    public static XStateLayout Current { get; } = Probe();

    /// <summary>The user state components this CPU and kernel enable (XCR0).</summary>
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
        if (!X86Base.IsSupported)
        {
            throw new PlatformNotSupportedException("CriuPS needs an x86-64 CPU");
        }
        var (eax, ebx, _, edx) = X86Base.CpuId(0xD, 0);
        ulong supported = (uint)eax | ((ulong)(uint)edx << 32);
        var components = new Dictionary<int, (int, int)>();
        for (int i = 2; i < 64; i++)
        {
            if ((supported & (1UL << i)) == 0)
            {
                continue;
            }
            var (size, offset, _, _) = X86Base.CpuId(0xD, i);
            components[i] = (offset, size);
        }
        return new XStateLayout(supported, ebx, components);
    }
}
