using System.Text;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Arch;
using CriuPS.Native.Cpu;
using CriuPS.Native.Ptrace;

namespace CriuPS.Engine.Resources.Cpu;

/// <summary>
/// cpuinfo.img: the CPU a checkpoint was taken on, written as CRIU 4.2 writes it (criu dump --cpu-cap, criu cpuinfo
/// dump), so that CRIU's "cpuinfo check" and "restore --cpu-cap" read ours and we read theirs. The restore checks it
/// against this machine (<see cref="CpuFit"/>).
/// </summary>
internal static class CpuDescription
{
    // The XSAVE components the kernel enabled (XCR0) where CRIU reads CPUID leaf 0xD (what the CPU supports): the same
    // unless the kernel left one out, and then ours is what programs see.
    private static readonly Lazy<CpuinfoX86Entry> ThisCpu = new(() => Describe(CpuId.Read, IArchitecture.Current.ExtendedState.SupportedFeatures));

    /// <summary>This machine's CPU, as cpuinfo.img describes one (do not change it: it is shared).</summary>
    public static CpuinfoX86Entry Current => ThisCpu.Value;

    /// <summary>Adds cpuinfo.img to a checkpoint: one entry, describing this machine's CPU.</summary>
    public static void Dump(DumpSession session)
    {
        var entry = new CpuinfoEntry();
        entry.X86Entry.Add(Current.Clone());
        session.AddImageEntry(ImageTypes.Cpuinfo, null, entry);
    }

    /// <summary>
    /// The description of the CPU <paramref name="cpuid"/> answers for, whose kernel enables the XSAVE components
    /// <paramref name="enabledComponents"/>: the fields CRIU's compel_cpuid fills, as it fills them.
    /// </summary>
    internal static CpuinfoX86Entry Describe(Func<uint, uint, CpuIdRegisters> cpuid, ulong enabledComponents)
    {
        var leaf0 = cpuid(0, 0);
        uint maxLeaf = leaf0.Eax;
        var vendor = Text(leaf0.Ebx, leaf0.Edx, leaf0.Ecx) switch
        {
            "GenuineIntel" => CpuVendor.Intel,
            "AuthenticAMD" or "HygonGenuine" => CpuVendor.Amd,
            _ => CpuVendor.Other,
        };

        uint family = 4, model = 0, stepping = 0, signature = 0;
        if (maxLeaf >= 1)
        {
            signature = cpuid(1, 0).Eax;
            family = (signature >> 8) & 0xF;
            model = (signature >> 4) & 0xF;
            stepping = signature & 0xF;
            if (family == 0xF)
            {
                family += (signature >> 20) & 0xFF;
            }
            if (family >= 6)
            {
                model += ((signature >> 16) & 0xF) << 4;
            }
        }
        uint maxExtendedLeaf = cpuid(0x80000000, 0).Eax;
        var words = CapabilityWords.Read(cpuid, maxLeaf, maxExtendedLeaf, vendor, family, signature);

        var entry = new CpuinfoX86Entry
        {
            // CRIU knows Intel and AMD (Hygon counts as AMD) and refuses to run on other CPUs; ours says Unknown for them.
            VendorId = vendor switch
            {
                CpuVendor.Intel => CpuinfoX86Entry.Types.Vendor.Intel,
                CpuVendor.Amd => CpuinfoX86Entry.Types.Vendor.Amd,
                _ => CpuinfoX86Entry.Types.Vendor.Unknown,
            },
            CpuFamily = family,
            Model = model,
            Stepping = stepping,
            CapabilityVer = CapabilityWords.Version,
            XfeaturesMask = 0,
            XsaveSize = 0,
            XsaveSizeMax = 0,
        };
        entry.Capability.Add(words);
        if (CapabilityWords.Has(words, CapabilityWords.Cpuid1Ecx, CapabilityWords.XsaveBit))
        {
            var xsave = cpuid(0xD, 0);
            entry.XfeaturesMask = XsaveComponents.CriuMask(enabledComponents, words);
            // The standard-format area for what XCR0 enables, and for everything the CPU supports.
            entry.XsaveSize = xsave.Ebx;
            entry.XsaveSizeMax = xsave.Ecx;
        }
        var brand = BrandString(cpuid, maxExtendedLeaf);
        if (brand.Length > 0)
        {
            entry.ModelId = brand;
        }
        return entry;
    }

    /// <summary>"AMD EPYC (family 26, model 2, stepping 1)": a CPU described by cpuinfo.img, for people.</summary>
    public static string Display(CpuinfoX86Entry cpu)
    {
        string name = cpu.HasModelId && cpu.ModelId.Trim().Length > 0 ? cpu.ModelId.Trim() : $"{cpu.VendorId} CPU";
        return $"{name} (family {cpu.CpuFamily}, model {cpu.Model}, stepping {cpu.Stepping})";
    }

    /// <summary>The CPUs of a machine that mixes models, for people.</summary>
    public static string Display(IEnumerable<CpuinfoX86Entry> cpus) => string.Join("; ", cpus.Select(Display));

    /// <summary>The CPU an image was taken on, for people, as its cpuinfo.img says; null when it has none.</summary>
    public static string? Saved(ImageSet images) =>
        images.Entries(ImageTypes.Cpuinfo).Select(e => ((CpuinfoEntry)e.Message).X86Entry).FirstOrDefault(cpus => cpus.Count > 0) is { } saved ? Display(saved) : null;

    /// <summary>The processor brand string (leaves 0x80000002-4), with the leading spaces Intel pads it with removed, as CRIU keeps it.</summary>
    private static string BrandString(Func<uint, uint, CpuIdRegisters> cpuid, uint maxExtendedLeaf)
    {
        if (maxExtendedLeaf < 0x80000004)
        {
            return "";
        }
        var text = string.Concat(Enumerable.Range(0, 3).Select(i => cpuid(0x80000002 + (uint)i, 0)).Select(r => Text(r.Eax, r.Ebx, r.Ecx, r.Edx)));
        int end = text.IndexOf('\0');
        return (end < 0 ? text : text[..end]).TrimStart(' ');
    }

    /// <summary>The characters CPUID returns in registers, four to a register, in the order given.</summary>
    private static string Text(params uint[] registers) =>
        Encoding.Latin1.GetString(registers.SelectMany(BitConverter.GetBytes).ToArray());
}
