using System.Globalization;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// hugetlb memory (VmFlags "ht"): private and shared MAP_HUGETLB memory ("/anon_hugepage (deleted)" in maps), memfds
/// made with MFD_HUGETLB, files of a hugetlbfs mount and System V segments made with SHM_HUGETLB. As CRIU records it,
/// an area's flags carry MAP_HUGETLB and the size bits of its page size (MAP_HUGE_2MB...), a memfd's and a segment's
/// hugetlb_flag MFD_HUGETLB/SHM_HUGETLB with the same size bits; the pages are saved at base-page granularity like any
/// other. A restore makes each again with the same flags, which take pages from the machine's pool of that size:
/// <see cref="CheckPools"/> refuses, before anything is made, an image whose pages the pools cannot give.
/// </summary>
internal static class HugetlbMemory
{
    public const string AnonymousPrefix = "/anon_hugepage";

    public static bool IsHugetlb(VmaInfo vma) => vma.HasFlag("ht");

    /// <summary>MAP_HUGETLB memory of no file (private or shared).</summary>
    public static bool IsAnonymous(VmaInfo vma) => IsHugetlb(vma) && vma.Path.StartsWith(AnonymousPrefix, StringComparison.Ordinal);

    /// <summary>MAP_HUGETLB with the size bits of the area's page size (smaps' KernelPageSize).</summary>
    public static ulong MapFlags(VmaInfo vma) => Mman.MAP_HUGETLB | HugePages.SizeFlag(vma.KernelPageSize);

    /// <summary>The huge page size of the file behind <paramref name="path"/> (a link of /proc), or null when it is not on hugetlbfs.</summary>
    public static ulong? PageSizeOfFile(string path)
    {
        var (type, blockSize) = Statfs.Query(path);
        return type == Statfs.HugetlbfsMagic ? (ulong)blockSize : null;
    }

    /// <summary>The huge page size of the memory the engine has mapped at <paramref name="address"/>, or null when it is not hugetlb memory.</summary>
    public static ulong? PageSizeOfAttachment(ulong address)
    {
        var area = SmapsParser.ReadMaps(Environment.ProcessId).FirstOrDefault(v => v.Start.Value == address);
        return area is null ? null : PageSizeOfFile($"/proc/self/map_files/{area.Start.Value:x}-{area.End.Value:x}");
    }

    /// <summary>The page size hugetlb flags ask for (their size bits, or this machine's default when they have none).</summary>
    public static ulong PageSizeOf(uint flags) => HugePages.PageSizeOf(flags) ?? HugePages.DefaultPageSize() ?? 0;

    /// <summary>How many bytes a mapping of an object of <paramref name="size"/> bytes takes: whole pages, huge ones when <paramref name="hugetlbFlags"/> ask for them.</summary>
    public static ulong MappedLength(ulong size, uint hugetlbFlags)
    {
        ulong pageSize = hugetlbFlags == 0 ? Page.Size : PageSizeOf(hugetlbFlags);
        return pageSize == 0 ? Page.AlignUp(size) : (size + pageSize - 1) / pageSize * pageSize;
    }

    /// <summary>
    /// What is wrong with hugetlb flags of an image (an area's MAP_HUGETLB, a memfd's MFD_HUGETLB, a segment's
    /// SHM_HUGETLB, each with the size bits), or null: bits beyond those, size bits without the flag, or a page size
    /// no architecture has (CRIU knows 16 KiB to 16 GiB).
    /// </summary>
    public static string? FlagsProblem(uint flags, uint hugetlbFlag, string flagName)
    {
        int log2 = (int)((flags & HugePages.SizeMask) >> HugePages.SizeShift);
        if ((flags & ~(hugetlbFlag | HugePages.SizeMask)) != 0 || (log2 != 0 && (flags & hugetlbFlag) == 0))
        {
            return $"hugetlb flags 0x{flags:x} are not {flagName} with the size bits of a page size";
        }
        return log2 is 0 or (>= 14 and <= 34) ? null : $"hugetlb flags 0x{flags:x} ask for pages of 2^{log2} bytes, which no machine has";
    }

    /// <summary>
    /// Refuses, before any process exists, an image whose hugetlb memory this machine cannot give: a page size it has no
    /// pool of, or more pages than its pools have free (vm.nr_hugepages too low, or the pages held by other processes).
    /// </summary>
    public static void CheckPools(RestoreSession session)
    {
        var needs = Needs(session.Images);
        foreach (var group in needs.GroupBy(n => n.PageSize))
        {
            ulong pageSize = group.Key;
            var first = group.First();
            ulong wanted = group.Aggregate(0UL, (sum, n) => sum + n.Pages);
            if (pageSize == 0)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                    $"The image needs huge pages ({first.What}), and this machine has none (no Hugepagesize in /proc/meminfo, so no nr_hugepages can give them).",
                    session.Images.Directory, "Restore on a machine whose kernel has hugetlb pages.");
            }
            var pool = HugePages.Pool(pageSize);
            if (pool is null)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                    $"The image needs huge pages of {pageSize >> 10} kB ({first.What}), and this machine has no pool of that size ({HugePages.PoolDirectory(pageSize)} is missing, so no nr_hugepages can give them).",
                    session.Images.Directory,
                    "Restore on a machine with huge pages of that size (booted with hugepagesz=), or checkpoint the program using this machine's size.");
            }
            if (pool.Available < wanted)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                    $"The image needs {wanted} huge pages of {pageSize >> 10} kB ({string.Join("; ", group.Select(n => $"{n.What}: {n.Pages}"))}), and this machine has {pool.Available} free of {pool.Total} (nr_hugepages).",
                    session.Images.Directory,
                    $"Raise the pool (echo N > {HugePages.PoolDirectory(pageSize)}/nr_hugepages, or vm.nr_hugepages for the default size) by at least {wanted - pool.Available}, or free huge pages that other processes hold.");
            }
            session.Log.Detail($"huge pages of {pageSize >> 10} kB: {wanted} needed, {pool.Available} free");
        }
    }

    private sealed record Need(ulong PageSize, ulong Pages, string What);

    // What each object made again takes from the pools: a private area reserves its whole length when mapped, a shared
    // object (shared memory, memfd, segment) its size; the pages of a hugetlbfs file stay in the file and need nothing new.
    private static List<Need> Needs(ImageSet images)
    {
        var needs = new List<Need>();
        var sharedObjects = new HashSet<ulong>();
        foreach (var process in images.Processes)
        {
            foreach (var area in process.Mm.Vmas.Where(a => (a.Flags & Mman.MAP_HUGETLB) != 0))
            {
                var status = (VmaStatus)area.Status;
                string where = $"process {process.Pid}'s area {area.Start:x}-{area.End:x}";
                ulong pageSize = PageSizeOf(area.Flags);
                if ((status & (VmaStatus.AnonPrivate | VmaStatus.FilePrivate)) != 0 && (status & VmaStatus.SysVIpc) == 0)
                {
                    needs.Add(new Need(pageSize, PagesOf(area.End - area.Start, pageSize), where));
                }
                else if ((status & VmaStatus.AnonShared) != 0 && sharedObjects.Add(area.Shmid))
                {
                    needs.Add(new Need(pageSize, PagesOf(SharedMemory.SizeOf(images, area.Shmid), pageSize), $"shared memory {area.Shmid} of {where}"));
                }
            }
        }
        foreach (var memfd in images.Entries(ImageTypes.Memfd).Select(e => (MemfdInodeEntry)e.Message).Where(m => m.HasHugetlbFlag))
        {
            if (FlagsProblem(memfd.HugetlbFlag, Memfd.MFD_HUGETLB, "MFD_HUGETLB") is { } problem)
            {
                throw ImageDamage.In(Path.Combine(images.Directory, ImageTypes.Memfd.FileName(null)), $"memfd {memfd.InodeId} ({memfd.Name}): {problem}.");
            }
            ulong pageSize = PageSizeOf(memfd.HugetlbFlag);
            needs.Add(new Need(pageSize, PagesOf(memfd.Size, pageSize), $"memfd:{memfd.Name}"));
        }
        string ipc = images.Root.Ids.IpcNsId.ToString(CultureInfo.InvariantCulture);
        foreach (var segment in images.Entries(ImageTypes.IpcnsShm, ipc).Select(e => e.Message).OfType<IpcShmEntry>().Where(s => s.HasHugetlbFlag))
        {
            if (FlagsProblem(segment.HugetlbFlag, SysvIpc.ShmHugetlb, "SHM_HUGETLB") is { } problem)
            {
                throw ImageDamage.In(Path.Combine(images.Directory, ImageTypes.IpcnsShm.FileName(ipc)), $"segment {segment.Desc.Id}: {problem}.");
            }
            ulong pageSize = PageSizeOf(segment.HugetlbFlag);
            needs.Add(new Need(pageSize, PagesOf(segment.Size, pageSize), $"System V shared memory segment {segment.Desc.Id}"));
        }
        return needs;
    }

    private static ulong PagesOf(ulong bytes, ulong pageSize) => pageSize == 0 ? 0 : (bytes + pageSize - 1) / pageSize;
}
