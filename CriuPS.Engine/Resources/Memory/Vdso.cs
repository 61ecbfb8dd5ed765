using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// The vDSO and its data pages ([vvar], [vvar_vclock], [vdso] on this kernel). They cannot be recreated from the
/// image: the restored process gets this kernel's own. When the saved vDSO is byte for byte this kernel's (same
/// build), the family is simply moved to the saved addresses. When it is not (an image from another kernel build),
/// the saved vDSO goes back at its address from the image as a proxy whose every function jumps into this kernel's,
/// parked with its data pages in a free place (<see cref="VdsoProxy"/>), as CRIU does.
/// </summary>
internal static class Vdso
{
    // Free pages kept around the parked vDSO family, as around the injection area.
    private static readonly ByteCount ParkGuard = new((ulong)Page.Size * 16);

    public static bool IsVdso(VmaEntry vma) => ((VmaStatus)vma.Status & VmaStatus.Vdso) != 0;

    public static bool IsVvar(VmaEntry vma) => ((VmaStatus)vma.Status & VmaStatus.Vvar) != 0;

    /// <summary>The runtime areas of the vDSO family in a process.</summary>
    public static List<VmaInfo> RuntimeAreas(IEnumerable<VmaInfo> vmas) =>
        vmas.Where(v => v.Path is "[vdso]" or "[vvar]" or "[vvar_vclock]").OrderBy(v => v.Start).ToList();

    /// <summary>
    /// Refuses, before anything is created, a process whose saved vDSO cannot come back on this kernel: damaged or
    /// missing from the image, or another build's that exports a function this kernel's vDSO lacks.
    /// </summary>
    public static void Check(string directory, ProcessImages images, PageChain pages)
    {
        var saved = Saved(directory, images, pages);
        if (saved is not null && !saved.Bytes.AsSpan().SequenceEqual(ThisKernels.Value))
        {
            PlanProxy(saved, ThisKernels.Value, runtimeBase: 0);
        }
    }

    /// <summary>
    /// Puts this kernel's vDSO family where the restored process needs it, before the saved areas are mapped, and
    /// says how the saved vDSO areas are restored.
    /// </summary>
    public static VdsoPlacement Place(RestoreSession session, RestoringProcess process, PageChain pages, IReadOnlyList<VmaInfo> runtime)
    {
        var saved = Saved(session.Images.Directory, process.Images, pages);
        if (saved is null)
        {
            foreach (var area in runtime)
            {
                process.Caller.Checked($"munmap of {area.Path}", RemoteCall.Munmap(area.Range));
            }
            return VdsoPlacement.None;
        }
        var runtimeVdso = runtime.SingleOrDefault(v => v.Path == "[vdso]") ?? throw NoVdsoHere();
        var runtimeBytes = process.Memory.Read(runtimeVdso.Start, (int)runtimeVdso.Range.Length.Value);
        var savedRange = new AddressRange(saved.Area.Start, saved.Area.End);

        var inPlace = SameBuildTargets(saved, runtime, runtimeBytes);
        if (inPlace is not null)
        {
            MoveFamily(process, runtime, inPlace);
            return new VdsoPlacement(null, savedRange);
        }

        // This kernel's family goes to a free place of the saved layout, below the saved family where there is room
        // (as the kernel itself places it), its areas keeping their distances: the vDSO finds its data at fixed offsets.
        var familyStart = runtime[0].Start;
        var familySize = runtime[^1].End - familyStart;
        var taken = process.Images.Mm.Vmas.Select(v => new AddressRange(v.Start, v.End)).Append(process.Injection.Scratch.Range).ToList();
        var park = FreeSpace.HighestFit(taken, familySize, ParkGuard, new Address(saved.Family[0].Start), new Address(Mman.MinAddress))
            ?? FreeSpace.HighestFit(taken, familySize, ParkGuard, new Address(Mman.TaskSize), new Address(Mman.MinAddress))
            ?? throw Incompatible($"the saved address space has no room for this kernel's vDSO ({familySize.Value / 1024} KiB)", saved.MmPath);
        var proxy = PlanProxy(saved, runtimeBytes, (park + (runtimeVdso.Start - familyStart)).Value);
        MoveFamily(process, runtime, runtime.ToDictionary(v => v, v => (park + (v.Start - familyStart)).Value));
        session.Log.Write($"vDSO of {process.Pid}: the saved one ({savedRange}) is another kernel build's; it becomes a proxy of this kernel's, parked at {park} ({proxy.Patches.Count} entry points)");
        return new VdsoPlacement(proxy, savedRange);
    }

    // This kernel's vDSO, as every process gets it: read once from our own.
    private static readonly Lazy<byte[]> ThisKernels = new(() =>
    {
        var vdso = RuntimeAreas(SmapsParser.ReadMaps(Environment.ProcessId)).SingleOrDefault(v => v.Path == "[vdso]") ?? throw NoVdsoHere();
        using var memory = ProcessMemory.Open(Environment.ProcessId);
        return memory.Read(vdso.Start, (int)vdso.Range.Length.Value);
    });

    /// <summary>The saved vDSO family of a process and the saved vDSO's bytes, or null when the image has no vDSO.</summary>
    private static SavedVdso? Saved(string directory, ProcessImages images, PageChain pages)
    {
        string mmPath = Path.Combine(directory, Images.ImageTypes.Mm.FileName(images.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var family = images.Mm.Vmas.Where(v => IsVdso(v) || IsVvar(v)).OrderBy(v => v.Start).ToList();
        if (family.Count == 0)
        {
            return null;
        }
        var vdso = family.Where(IsVdso).ToList();
        if (vdso.Count != 1)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"{mmPath}: {vdso.Count} areas are marked as the vDSO; a process has one.", mmPath);
        }
        var bytes = pages.Read(new Address(vdso[0].Start), (int)(vdso[0].End - vdso[0].Start))
            ?? throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                $"{mmPath}: the image does not contain the vDSO's contents ({Range(vdso[0])}).", mmPath);
        return new SavedVdso(mmPath, family, vdso[0], bytes);
    }

    /// <summary>
    /// Where each runtime area goes when the saved vDSO is this kernel's and the layout matches: the vDSO to its saved
    /// address, the data pages (one saved area, as CRIU merges them, or several) to the saved data block; null otherwise.
    /// </summary>
    private static Dictionary<VmaInfo, ulong>? SameBuildTargets(SavedVdso saved, IReadOnlyList<VmaInfo> runtime, byte[] runtimeBytes)
    {
        var savedVvar = saved.Family.Where(IsVvar).ToList();
        var runtimeVvar = runtime.Where(v => v.Path != "[vdso]").ToList();
        ulong savedVvarSize = savedVvar.Aggregate(0UL, (sum, v) => sum + (v.End - v.Start));
        ulong runtimeVvarSize = runtimeVvar.Aggregate(0UL, (sum, v) => sum + v.Range.Length.Value);
        if (!saved.Bytes.AsSpan().SequenceEqual(runtimeBytes) || savedVvarSize != runtimeVvarSize
            || !Contiguous(savedVvar.Select(v => (v.Start, v.End))) || !Contiguous(runtimeVvar.Select(v => (v.Start.Value, v.End.Value))))
        {
            return null;
        }
        ulong runtimeVvarStart = runtimeVvar.Count > 0 ? runtimeVvar[0].Start.Value : 0;
        ulong savedVvarStart = savedVvar.Count > 0 ? savedVvar[0].Start : 0;
        return runtime.ToDictionary(v => v, v => v.Path == "[vdso]" ? saved.Area.Start : savedVvarStart + (v.Start.Value - runtimeVvarStart));
    }

    /// <summary>The jumps that make the saved vDSO a proxy of this kernel's, whose vDSO is (or will be) at <paramref name="runtimeBase"/>.</summary>
    private static VdsoProxy PlanProxy(SavedVdso saved, byte[] runtimeBytes, ulong runtimeBase)
    {
        VdsoSymbols savedSymbols, runtimeSymbols;
        try
        {
            savedSymbols = VdsoSymbols.Read(saved.Bytes);
        }
        catch (InvalidDataException e)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                $"{saved.MmPath}: the saved vDSO ({Range(saved.Area)}) cannot be read as an ELF image: {e.Message}.", saved.MmPath, null, e);
        }
        try
        {
            runtimeSymbols = VdsoSymbols.Read(runtimeBytes);
        }
        catch (InvalidDataException e)
        {
            throw Incompatible($"this kernel's vDSO cannot be read as an ELF image ({e.Message})");
        }
        try
        {
            return VdsoProxy.Plan(savedSymbols, runtimeSymbols, runtimeBase);
        }
        catch (VdsoProxyException e)
        {
            throw Incompatible($"the saved vDSO ({Range(saved.Area)}) cannot be made a proxy of this kernel's: {e.Message}", saved.MmPath);
        }
    }

    /// <summary>
    /// Moves the runtime areas to their targets through a temporary place free in the current and the saved layout
    /// (a direct move could land on an area not moved yet, or overlap itself).
    /// </summary>
    private static void MoveFamily(RestoringProcess process, IReadOnlyList<VmaInfo> runtime, Dictionary<VmaInfo, ulong> targets)
    {
        var familyStart = runtime[0].Start;
        var familySize = runtime[^1].End - familyStart;
        var taken = process.Images.Mm.Vmas.Select(v => new AddressRange(v.Start, v.End))
            .Concat(runtime.Select(v => v.Range))
            .Concat(targets.Select(t => new AddressRange(t.Value, t.Value + t.Key.Range.Length.Value)))
            .Append(process.Injection.Scratch.Range);
        var temporary = FreeSpace.HighestFit(taken, familySize, ParkGuard, new Address(Mman.TaskSize), new Address(Mman.MinAddress))
            ?? throw Incompatible("the saved address space has no room to move this kernel's vDSO through");
        // Every move in one batch: a stop per mremap was six per process (3 ms for a tree of 32, perf).
        var batch = new SyscallBatch(process.Injection);
        var moves = runtime.Select(area => (area, From: area.Start.Value, To: (temporary + (area.Start - familyStart)).Value))
            .Concat(runtime.Select(area => (area, From: (temporary + (area.Start - familyStart)).Value, To: targets[area])))
            .ToList();
        foreach (var (area, from, to) in moves)
        {
            batch.Add($"mremap of {area.Path} to 0x{to:x}", RemoteCall.MoveArea(new AddressRange(from, from + area.Range.Length.Value), new Address(to)));
        }
        var moved = batch.Run();
        for (int i = 0; i < moves.Count; i++)
        {
            if ((ulong)moved[i] != moves[i].To)
            {
                throw new InvalidOperationException($"{moves[i].area.Path} moved to 0x{moved[i]:x}, not 0x{moves[i].To:x}");
            }
        }
    }

    private static bool Contiguous(IEnumerable<(ulong Start, ulong End)> areas)
    {
        ulong? end = null;
        foreach (var (start, stop) in areas)
        {
            if (end is not null && start != end)
            {
                return false;
            }
            end = stop;
        }
        return true;
    }

    private static AddressRange Range(VmaEntry area) => new(area.Start, area.End);

    private static CheckpointException NoVdsoHere() => Incompatible("this kernel maps no vDSO into processes, so the saved one has nothing to lead to");

    // What concerns the saved vDSO names mm-PID.img, which describes it (its values were checked before as damage:
    // AddressSpaceChecks), so that another kernel build's vDSO is told from a damaged image.
    private static CheckpointException Incompatible(string what, string? mmPath = null) => new(
        CheckpointErrorKind.ImageIncompatible,
        mmPath is null ? $"Cannot restore: {what}." : $"{mmPath}: cannot restore: {what}.",
        mmPath,
        "Restore on a machine whose kernel offers what the image needs, or take a new checkpoint there.");
}

/// <summary>The vDSO family a process had, as its image records it, and the saved vDSO's bytes.</summary>
internal sealed record SavedVdso(string MmPath, List<VmaEntry> Family, VmaEntry Area, byte[] Bytes);

/// <summary>
/// How the saved vDSO comes back: covered by this kernel's own (same build), or restored from the image as a proxy
/// that the pages fill and <see cref="ApplyProxy"/> then patches.
/// </summary>
internal sealed class VdsoPlacement
{
    public static readonly VdsoPlacement None = new(null, null);

    public VdsoPlacement(VdsoProxy? proxy, AddressRange? savedVdso)
    {
        Proxy = proxy;
        SavedVdso = savedVdso;
    }

    public VdsoProxy? Proxy { get; }

    public AddressRange? SavedVdso { get; }

    /// <summary>Whether a saved area is mapped and filled from the image (the vDSO family only when it is a proxy).</summary>
    public bool MapsFromImage(VmaEntry area) =>
        ((VmaStatus)area.Status & VmaStatus.Vsyscall) == 0 && (Proxy is not null || (!Vdso.IsVdso(area) && !Vdso.IsVvar(area)));

    /// <summary>Whether a run of saved pages is left alone: the saved vDSO's, where this kernel's own vDSO now lies.</summary>
    public bool Skips(PageRun run) => Proxy is null && SavedVdso is { } vdso && vdso.Overlaps(run.Range);

    /// <summary>Writes the proxy's jumps over the saved vDSO, once its pages are in (through /proc/PID/mem, which may write to code).</summary>
    public void ApplyProxy(RestoringProcess process)
    {
        if (Proxy is null || SavedVdso is not { } vdso)
        {
            return;
        }
        foreach (var patch in Proxy.Patches)
        {
            process.Memory.Write(vdso.Start + new ByteCount(patch.Offset), patch.Code);
        }
    }
}
