using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using Google.Protobuf;
using CriuPS.Native.Arch;
using CriuPS.Native.Ptrace;

namespace CriuPS.Engine.Resources.Cpu;

/// <summary>
/// Whether a checkpoint can run on this CPU, decided before anything is created. What an image needs:
/// <list type="bullet">
/// <item>every instruction-set feature of the saved CPU (<see cref="InstructionFeatures"/>): its programs may have
/// chosen code that uses them, and would die of SIGILL here;</item>
/// <item>every XSAVE component the saved CPU's kernel enabled (xfeatures_mask: glibc chooses code by them, AVX-512
/// string functions when XCR0 enables the opmask and ZMM states) and every component a saved thread has in use
/// (xstate_bv in its core image, also in images without cpuinfo.img): each must be enabled here, or the thread's
/// state could not be set and its code could not run;</item>
/// <item>an XSAVE area no larger than this CPU's.</item>
/// </list>
/// What the image does not need is no reason to refuse: this CPU may have more features, and the other bits of
/// the capability words (virtualization, power, speculation controls) are ignored. CRIU's default check is stricter
/// (equal XSAVE sizes); an image whose features were cleared by hand (Export-CheckpointImageFile) needs less.
/// </summary>
public static class CpuFit
{
    /// <summary>The restore's check: refuses, with ImageIncompatible naming every missing feature, an image this CPU cannot run.</summary>
    internal static void Check(RestoreSession session)
    {
        var fit = Evaluate(session.Images);
        if (!fit.Fits)
        {
            string saved = SavedPath(session.Images.Directory);
            string source = File.Exists(saved) ? saved : session.Images.Directory;
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"{source}: the checkpoint needs CPU features this machine ({fit.ThisCpu}) lacks: {string.Join(", ", fit.MissingFeatures)}.",
                source,
                "Restore on a machine whose CPU has these features; Test-CheckpointSupport -ImagePath tells whether an image fits a machine.");
        }
        session.Log.Detail(fit.Detail);
        if (fit.Warning is not null)
        {
            session.Log.Warning(fit.Warning);
        }
    }

    /// <summary>Test-CheckpointSupport -ImagePath: whether the image in <paramref name="imagePath"/> fits this CPU.</summary>
    public static CpuCompatibility Check(string imagePath) => Evaluate(ImageSet.Read(imagePath));

    /// <summary>This machine's CPU as a checkpoint describes it (cpuinfo.img's entry), for another machine to check before a move.</summary>
    public static byte[] ThisCpuDescription() => new CpuinfoEntry { X86Entry = { CpuDescription.Current } }.ToByteArray();

    /// <summary>
    /// Whether a process of the machine <paramref name="description"/> came from (<see cref="ThisCpuDescription"/>
    /// there) fits this CPU: its instruction-set extensions, before any image exists (Move-Process checks this first).
    /// </summary>
    public static CpuCompatibility CheckDescription(byte[] description, string source) =>
        Compare(source, CpuinfoEntry.Parser.ParseFrom(description).X86Entry, [new ThreadComponents(0, 0)]);

    private static string SavedPath(string directory) => Path.Combine(directory, ImageTypes.Cpuinfo.FileName(null));

    /// <summary>
    /// Runs the comparison once, on this CPU's description written and read back through the image codec, so that
    /// the first restore in a new PowerShell does not wait for it to be compiled (the engine's warm-up calls it).
    /// </summary>
    internal static void Warm()
    {
        var written = new CpuinfoEntry { X86Entry = { CpuDescription.Current } }.ToByteArray();
        _ = Compare("", CpuinfoEntry.Parser.ParseFrom(written).X86Entry, [new ThreadComponents(0, 0)]);
    }

    private static CpuCompatibility Evaluate(ImageSet images)
    {
        var threads = new List<ThreadComponents>();
        foreach (var process in images.Processes)
        {
            foreach (var (tid, core) in process.Cores)
            {
                threads.Add(new ThreadComponents(tid, core.ThreadInfo?.Fpregs?.Xsave?.XstateBv ?? 0));
            }
        }
        return Compare(images.Directory, SavedCpus(images), threads);
    }

    private static CpuCompatibility Compare(string directory, IReadOnlyList<CpuinfoX86Entry>? saved, IReadOnlyList<ThreadComponents> threads)
    {
        var here = CpuDescription.Current;
        ulong enabled = IArchitecture.Current.ExtendedState.SupportedFeatures;
        ulong used = UsedComponents(threads);
        string detail;
        string? warning = null;
        if (saved is null)
        {
            detail = $"No CPU description was saved with the image (cpuinfo.img; CRIU writes one only with --cpu-cap): only the XSAVE state of its {threads.Count} thread(s) was compared with this CPU (components 0x{used:x} in use).";
        }
        else
        {
            ulong components = SavedComponents(saved);
            int features = InstructionFeatures.All.Count(f => saved.Any(cpu => HasFeature(cpu, f)));
            detail = $"cpuinfo.img ({CpuDescription.Display(saved)}) and the XSAVE state of {threads.Count} thread(s) compared with this CPU: {features} instruction features, XSAVE components 0x{components | used:x}.";
            ulong extra = enabled & XsaveComponents.CriuUserMask & ~XsaveComponents.Saved(components);
            if (extra != 0)
            {
                warning = $"This CPU enables XSAVE state the checkpointed CPU did not ({string.Join(", ", XsaveComponents.Bits(extra).Select(XsaveComponents.Describe))}): " +
                    "a program that sized an XSAVE area from its CPU's CPUID when it started (glibc does, for lazy symbol binding) may overflow it here.";
            }
        }
        return new CpuCompatibility
        {
            ImagePath = directory,
            MissingFeatures = Missing(saved ?? [], threads, here, enabled),
            SavedCpu = saved is null ? null : CpuDescription.Display(saved),
            ThisCpu = CpuDescription.Display(here),
            Detail = detail,
            Warning = warning,
        };
    }

    /// <summary>
    /// What the saved CPUs and threads need that this CPU (<paramref name="here"/>, whose kernel enables the XSAVE
    /// components <paramref name="enabled"/>) lacks, by name.
    /// </summary>
    internal static List<string> Missing(IReadOnlyList<CpuinfoX86Entry> saved, IReadOnlyList<ThreadComponents> threads, CpuinfoX86Entry here, ulong enabled)
    {
        var missing = InstructionFeatures.All
            .Where(f => saved.Any(cpu => HasFeature(cpu, f)) && !HasFeature(here, f))
            .Select(f => f.Name)
            .ToList();

        ulong components = SavedComponents(saved);
        ulong used = UsedComponents(threads);
        foreach (int component in XsaveComponents.Bits((components | used) & ~enabled))
        {
            var name = XsaveComponents.Describe(component);
            if ((components & (1UL << component)) == 0)
            {
                var users = threads.Where(t => (t.InUse & (1UL << component)) != 0).ToList();
                name += $", in use by thread {users[0].Tid} (core-{users[0].Tid}.img){(users.Count > 1 ? $" and {users.Count - 1} other(s)" : "")}";
            }
            missing.Add(name);
        }

        foreach (var cpu in saved.Where(c => c.HasXsaveSize && c.XsaveSize > here.XsaveSize))
        {
            missing.Add($"an XSAVE area of {cpu.XsaveSize} bytes (this CPU's holds {here.XsaveSize})");
        }
        return missing;
    }

    private static ulong SavedComponents(IEnumerable<CpuinfoX86Entry> saved)
    {
        ulong all = 0;
        foreach (var cpu in saved)
        {
            all |= cpu.XfeaturesMask;
        }
        return all;
    }

    private static ulong UsedComponents(IEnumerable<ThreadComponents> threads)
    {
        ulong all = 0;
        foreach (var thread in threads)
        {
            all |= thread.InUse;
        }
        return all;
    }

    /// <summary>Whether a CPU has a feature; version 1 images hold fewer words, and say nothing of the features of the others.</summary>
    private static bool HasFeature(CpuinfoX86Entry cpu, InstructionFeature feature) =>
        CapabilityWords.Has(cpu.Capability, feature.Word, feature.Bit);

    /// <summary>The CPUs cpuinfo.img describes, checked; null when the image has no cpuinfo.img.</summary>
    private static IReadOnlyList<CpuinfoX86Entry>? SavedCpus(ImageSet images)
    {
        var path = SavedPath(images.Directory);
        if (!File.Exists(path))
        {
            return null;
        }
        var entries = images.Entries(ImageTypes.Cpuinfo);
        if (entries.Count != 1)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"{path} holds {entries.Count} entries; it must hold one.", path, ImageDamage.Action);
        }
        var cpus = ((CpuinfoEntry)entries[0].Message).X86Entry;
        if (cpus.Count == 0)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"{path} describes no x86-64 CPU: the checkpoint was taken on another architecture.", path);
        }
        foreach (var cpu in cpus)
        {
            int words = CapabilityWords.CountFor(cpu.CapabilityVer) ?? throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"{path}: capability version {cpu.CapabilityVer}, which CriuPS does not know (CRIU 4.2 writes {CapabilityWords.Version}).", path,
                "Check the image with the tool that wrote it.");
            if (cpu.Capability.Count != words)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                    $"{path}: {cpu.Capability.Count} capability words where version {cpu.CapabilityVer} has {words}.", path, ImageDamage.Action);
            }
        }
        return cpus;
    }
}

/// <summary>The XSAVE components a saved thread has in use (xstate_bv in its core image).</summary>
internal sealed record ThreadComponents(int Tid, ulong InUse);
