using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// The vDSO and its data pages ([vvar], [vvar_vclock], [vdso] on this kernel). They cannot be recreated from
/// the image, so the restored process gets this kernel's own, moved to the addresses it had; that is only correct
/// when this kernel's vDSO is byte for byte the one that was saved, which is checked first.
/// </summary>
internal static class Vdso
{
    public static bool IsVdso(VmaEntry vma) => ((VmaStatus)vma.Status & VmaStatus.Vdso) != 0;

    public static bool IsVvar(VmaEntry vma) => ((VmaStatus)vma.Status & VmaStatus.Vvar) != 0;

    /// <summary>The runtime areas of the vDSO family in a process.</summary>
    public static List<VmaInfo> RuntimeAreas(IEnumerable<VmaInfo> vmas) =>
        vmas.Where(v => v.Path is "[vdso]" or "[vvar]" or "[vvar_vclock]").OrderBy(v => v.Start).ToList();

    /// <summary>Moves the process's vDSO family to the saved addresses, after checking the vDSO is the same.</summary>
    public static void Restore(RestoringProcess process, PageChain pages, IReadOnlyList<VmaInfo> runtime)
    {
        var caller = process.Caller;
        var saved = process.Images.Mm.Vmas.Where(v => IsVdso(v) || IsVvar(v)).OrderBy(v => v.Start).ToList();
        if (saved.Count == 0)
        {
            foreach (var area in runtime)
            {
                caller.Checked($"munmap of {area.Path}", SyscallNumber.Munmap, area.Start.Value, area.Range.Length.Value);
            }
            return;
        }
        var targets = Targets(process, pages, saved, runtime);

        // Through a temporary place first, so that no move lands on an area that has not moved yet.
        var temporary = new List<ulong>();
        foreach (var area in runtime)
        {
            temporary.Add((ulong)caller.Checked($"mremap of {area.Path}", SyscallNumber.Mremap, area.Start.Value, area.Range.Length.Value, area.Range.Length.Value, Mman.MREMAP_MAYMOVE));
        }
        for (int i = 0; i < runtime.Count; i++)
        {
            ulong length = runtime[i].Range.Length.Value;
            long moved = caller.Checked($"mremap of {runtime[i].Path} to 0x{targets[i]:x}", SyscallNumber.Mremap,
                temporary[i], length, length, Mman.MREMAP_MAYMOVE | Mman.MREMAP_FIXED, targets[i]);
            if ((ulong)moved != targets[i])
            {
                throw new InvalidOperationException($"{runtime[i].Path} moved to 0x{moved:x}, not 0x{targets[i]:x}");
            }
        }
    }

    /// <summary>
    /// Where each runtime area goes. The data pages may be one saved area (CRIU merges [vvar] and [vvar_vclock])
    /// or several; what must match is the vDSO's bytes and the size of the data block before it.
    /// </summary>
    private static List<ulong> Targets(RestoringProcess process, PageChain pages, List<VmaEntry> saved, IReadOnlyList<VmaInfo> runtime)
    {
        var savedVvar = saved.Where(IsVvar).ToList();
        var savedVdso = saved.Where(IsVdso).ToList();
        var runtimeVvar = runtime.Where(v => v.Path != "[vdso]").ToList();
        var runtimeVdso = runtime.Where(v => v.Path == "[vdso]").ToList();
        ulong savedVvarSize = savedVvar.Aggregate(0UL, (sum, v) => sum + (v.End - v.Start));
        ulong runtimeVvarSize = runtimeVvar.Aggregate(0UL, (sum, v) => sum + v.Range.Length.Value);
        if (savedVdso.Count != 1 || runtimeVdso.Count != 1 || savedVdso[0].End - savedVdso[0].Start != runtimeVdso[0].Range.Length.Value
            || savedVvarSize != runtimeVvarSize || !Contiguous(savedVvar.Select(v => (v.Start, v.End))) || !Contiguous(runtimeVvar.Select(v => (v.Start.Value, v.End.Value))))
        {
            throw Mismatch($"the saved vDSO layout (vdso {Sizes(savedVdso.Select(v => v.End - v.Start))}, data {savedVvarSize / 1024} KiB) differs from this kernel's (vdso {Sizes(runtimeVdso.Select(v => v.Range.Length.Value))}, data {runtimeVvarSize / 1024} KiB)");
        }
        var vdso = savedVdso[0];
        var savedBytes = pages.Read(new Address(vdso.Start), (int)(vdso.End - vdso.Start));
        if (savedBytes is null)
        {
            throw Mismatch("the image does not contain the vDSO's contents, so it cannot be compared with this kernel's");
        }
        if (!savedBytes.AsSpan().SequenceEqual(process.Memory.Read(runtimeVdso[0].Start, (int)runtimeVdso[0].Range.Length.Value)))
        {
            throw Mismatch("the saved vDSO is not this kernel's vDSO (the image was made on another kernel build)");
        }
        ulong runtimeVvarStart = runtimeVvar.Count > 0 ? runtimeVvar[0].Start.Value : 0;
        ulong savedVvarStart = savedVvar.Count > 0 ? savedVvar[0].Start : 0;
        return runtime.Select(v => v.Path == "[vdso]" ? vdso.Start : savedVvarStart + (v.Start.Value - runtimeVvarStart)).ToList();
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

    private static string Sizes(IEnumerable<ulong> sizes) => string.Join("+", sizes.Select(s => $"{s / 1024} KiB"));

    private static CheckpointException Mismatch(string what) => new(
        CheckpointErrorKind.ImageIncompatible,
        $"Cannot restore: {what}. CriuPS restores onto the same kernel build only.",
        null,
        "Restore on a machine running the kernel the checkpoint was taken on.");
}
