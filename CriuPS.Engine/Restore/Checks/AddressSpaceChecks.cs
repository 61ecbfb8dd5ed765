using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Restore.Checks;

/// <summary>
/// The address space of mm-PID.img as a kernel lays one out: areas of whole pages, in the user address space (but
/// the vsyscall page, above it, which a restore never maps), in address order without overlaps, with protections and
/// flags a mapping has; one vDSO at most, its family of a vDSO's size; and the fields PR_SET_MM_MAP takes within the
/// bounds and in the order the kernel demands (its validate_prctl_map_addr). A damaged value is refused here, naming
/// it, rather than found by a system call once processes exist (or taken for another kernel's vDSO).
/// </summary>
internal static class AddressSpaceChecks
{
    /// <summary>
    /// The most a vDSO or its data pages take: a few pages on every kernel (2 and 4 + 2 on 6.18), so an area of the
    /// family near this size is damage, and the saved vDSO's bytes are read whole into memory.
    /// </summary>
    public static readonly ByteCount VdsoFamilyMaxSize = ByteCount.FromMiB(1);

    private const ulong KnownProtections = Mman.PROT_READ | Mman.PROT_WRITE | Mman.PROT_EXEC;

    // What CRIU and CriuPS record of a mapping's flags (smaps' VmFlags gd, lo, nr and ht, and how it was mapped:
    // shared, private, or droppable, VmFlags dp, which Linux 6.11 added as a type of its own); with MAP_HUGETLB, the
    // size bits of its page size (checked apart).
    private const ulong KnownFlags = Mman.MAP_SHARED | Mman.MAP_PRIVATE | Mman.MAP_DROPPABLE | Mman.MAP_ANONYMOUS | Mman.MAP_GROWSDOWN
        | Mman.MAP_LOCKED | Mman.MAP_NORESERVE | Mman.MAP_HUGETLB;

    public static void Check(string path, MmEntry mm)
    {
        CheckAreas(path, mm.Vmas);
        CheckFields(path, mm);
    }

    private static void CheckAreas(string path, IReadOnlyList<VmaEntry> vmas)
    {
        if (vmas.Count == 0)
        {
            throw ImageDamage.In(path, "entries[0].vmas is empty; a live process has memory areas.");
        }
        int vdso = -1;
        for (int i = 0; i < vmas.Count; i++)
        {
            var vma = vmas[i];
            // Named only in a refusal: formatting it for each of 10,000 areas took a fifth of the checks' time.
            var entry = new AreaName(i, vma);
            var status = (VmaStatus)vma.Status;
            if (vma.Start >= vma.End)
            {
                throw ImageDamage.In(path, $"{entry}: the area ends where it starts or before.");
            }
            if (!new Address(vma.Start).IsPageAligned || !new Address(vma.End).IsPageAligned)
            {
                throw ImageDamage.In(path, $"{entry}: the area does not start and end on page boundaries ({Page.Size} bytes).");
            }
            if ((status & VmaStatus.Vsyscall) == 0 && vma.End > Mman.TaskSize)
            {
                throw ImageDamage.In(path, $"{entry}: the area ends beyond the user address space (0x{Mman.TaskSize:x}).");
            }
            if (i > 0 && vma.Start < vmas[i - 1].End)
            {
                throw ImageDamage.In(path, $"{entry}: the area overlaps or comes before vmas[{i - 1}] ({vmas[i - 1].Start:x}-{vmas[i - 1].End:x}); areas are listed in address order, apart.");
            }
            if ((vma.Prot & ~KnownProtections) != 0)
            {
                throw ImageDamage.In(path, $"{entry}: protection 0x{vma.Prot:x} has bits no mapping has (only PROT_READ, PROT_WRITE and PROT_EXEC).");
            }
            ulong type = vma.Flags & (Mman.MAP_SHARED | Mman.MAP_PRIVATE | Mman.MAP_DROPPABLE);
            if (HugetlbMemory.FlagsProblem((uint)(vma.Flags & (Mman.MAP_HUGETLB | HugePages.SizeMask)), (uint)Mman.MAP_HUGETLB, "MAP_HUGETLB") is { } hugetlb)
            {
                throw ImageDamage.In(path, $"{entry}: {hugetlb}.");
            }
            if ((vma.Flags & Mman.MAP_HUGETLB) != 0 && HugePages.PageSizeOf((uint)vma.Flags) is { } hugePage && (vma.Start % hugePage != 0 || vma.End % hugePage != 0))
            {
                throw ImageDamage.In(path, $"{entry}: the area of huge pages of {hugePage >> 10} kB does not start and end on their boundaries.");
            }
            if ((vma.Flags & ~(KnownFlags | HugePages.SizeMask)) != 0 || type is not (Mman.MAP_SHARED or Mman.MAP_PRIVATE or Mman.MAP_DROPPABLE)
                || (type == Mman.MAP_DROPPABLE && (vma.Flags & Mman.MAP_ANONYMOUS) == 0))
            {
                throw ImageDamage.In(path, $"{entry}: flags 0x{vma.Flags:x} are no mapping's (one of MAP_SHARED, MAP_PRIVATE and MAP_DROPPABLE (anonymous only), with MAP_ANONYMOUS, MAP_GROWSDOWN, MAP_LOCKED, MAP_NORESERVE or MAP_HUGETLB).");
            }
            // Flags without MAP_ANONYMOUS map a file, a socket's ring or a System V segment: the status says which, or the restore has nothing to map.
            if ((vma.Flags & Mman.MAP_ANONYMOUS) == 0 && (status & (VmaStatus.FilePrivate | VmaStatus.FileShared | VmaStatus.Socket | VmaStatus.SysVIpc)) == 0)
            {
                throw ImageDamage.In(path, $"{entry}: flags 0x{vma.Flags:x} map a file (no MAP_ANONYMOUS), but status 0x{vma.Status:x} names no file, socket or System V shared memory mapping (VMA_FILE_PRIVATE, VMA_FILE_SHARED, VMA_AREA_SOCKET or VMA_AREA_SYSVIPC).");
            }
            if (!new Address(vma.Pgoff).IsPageAligned)
            {
                throw ImageDamage.In(path, $"{entry}: the file offset {vma.Pgoff} is not on a page boundary.");
            }
            if (Vdso.IsVdso(vma) || Vdso.IsVvar(vma))
            {
                if (Vdso.IsVdso(vma) && vdso >= 0)
                {
                    throw ImageDamage.In(path, $"{entry}: vmas[{vdso}] is the vDSO already; a process has one.");
                }
                vdso = Vdso.IsVdso(vma) ? i : vdso;
                if (new ByteCount(vma.End - vma.Start) > VdsoFamilyMaxSize)
                {
                    throw ImageDamage.In(path, $"{entry}: {(Vdso.IsVdso(vma) ? "the vDSO" : "the vDSO's data")} takes {(vma.End - vma.Start) >> 10} KiB; a vDSO and its data are a few pages (at most {VdsoFamilyMaxSize.Value >> 10} KiB).");
                }
            }
        }
    }

    // How a message names an area: its place in the entry and its range.
    private readonly record struct AreaName(int Index, VmaEntry Vma)
    {
        public override string ToString() => $"entries[0].vmas[{Index}] ({Vma.Start:x}-{Vma.End:x})";
    }

    private static void CheckFields(string path, MmEntry mm)
    {
        var fields = new (string Name, ulong Value)[]
        {
            ("mm_start_code", mm.MmStartCode), ("mm_end_code", mm.MmEndCode), ("mm_start_data", mm.MmStartData), ("mm_end_data", mm.MmEndData),
            ("mm_start_brk", mm.MmStartBrk), ("mm_brk", mm.MmBrk), ("mm_start_stack", mm.MmStartStack),
            ("mm_arg_start", mm.MmArgStart), ("mm_arg_end", mm.MmArgEnd), ("mm_env_start", mm.MmEnvStart), ("mm_env_end", mm.MmEnvEnd),
        };
        foreach (var (name, value) in fields)
        {
            if (value < Mman.MinAddress || value >= Mman.TaskSize)
            {
                throw ImageDamage.In(path, $"entries[0].{name} is 0x{value:x}, outside the user address space (0x{Mman.MinAddress:x} to 0x{Mman.TaskSize:x}).");
            }
        }
        Ordered(path, "mm_start_code", mm.MmStartCode, "mm_end_code", mm.MmEndCode, strictly: true);
        Ordered(path, "mm_start_data", mm.MmStartData, "mm_end_data", mm.MmEndData, strictly: false);
        Ordered(path, "mm_start_brk", mm.MmStartBrk, "mm_brk", mm.MmBrk, strictly: false);
        Ordered(path, "mm_arg_start", mm.MmArgStart, "mm_arg_end", mm.MmArgEnd, strictly: false);
        Ordered(path, "mm_env_start", mm.MmEnvStart, "mm_env_end", mm.MmEnvEnd, strictly: false);
        // Pairs of a type and a value: a word missing or repeated shifts every pair after it.
        var auxv = MmFields.AuxvToRestore(mm);
        string auxvName = mm.CriupsSavedAuxv.Count > 0 ? "criups_saved_auxv" : "mm_saved_auxv";
        if (auxv.Count == 0 || auxv.Count % 2 != 0)
        {
            throw ImageDamage.In(path, $"entries[0].{auxvName} has {auxv.Count} words; the auxiliary vector is pairs of a type and a value.");
        }
    }

    private static void Ordered(string path, string first, ulong start, string second, ulong end, bool strictly)
    {
        if (strictly ? start >= end : start > end)
        {
            throw ImageDamage.In(path, $"entries[0].{second} (0x{end:x}) is {(strictly ? "not above" : "below")} entries[0].{first} (0x{start:x}).");
        }
    }
}
