using CriuPS.Engine.Support;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// The areas of a running process for the pre-flight check: from /proc/PID/maps, and from /proc/PID/smaps only when
/// the verdict on one of them could depend on its VmFlags. smaps walks every page of every area to count them (45 to
/// 50 ms of CPU per GiB of memory here) and writes twenty-odd lines per area (7 MB for 5,000 areas), while maps is a
/// line per area; a dump reads smaps once more when the process is frozen, so the pre-flight's read was paid twice.
/// <para>
/// Of the VmFlags, the pre-flight (<see cref="AddressSpace.Unsupported"/>) looks only at io and pf (device mappings,
/// which only a driver's mmap of a special file or of a buffer it exports makes), ss (shadow stacks, which only a CPU with user_shstk has) and
/// ht on /anon_hugepage (hugetlb memory of no file, saved, where a deleted file would be judged as a ghost file).
/// Areas that could carry them send the pre-flight to smaps; the others cannot. A device node mapped from outside
/// /dev is missed here, not by the dump: the frozen tree's areas come from smaps and are judged again, with every
/// flag, before anything is saved, and a refused dump releases the process untouched.
/// </para>
/// </summary>
internal static class PreflightAreas
{
    public static List<VmaInfo> Read(int pid)
    {
        var maps = SmapsParser.ReadMaps(pid);
        return ShadowStackProbe.CpuHasUserShadowStacks || maps.Any(FlagsMayMatter) ? SmapsParser.Read(pid) : maps;
    }

    /// <summary>Whether the pre-flight's verdict on this area could depend on its VmFlags (shadow stacks aside).</summary>
    public static bool FlagsMayMatter(VmaInfo vma)
    {
        string path = vma.Path;
        if (path.Length == 0 || path.StartsWith('['))
        {
            // Anonymous and kernel-named areas: of these only the [vvar] family are VM_IO/VM_PFNMAP, and allowed.
            return false;
        }
        if (!path.StartsWith('/'))
        {
            // anon_inode:, socket:, and whatever else a driver names: what only smaps can tell apart.
            return true;
        }
        return path.StartsWith("/dev/", StringComparison.Ordinal) && !path.StartsWith("/dev/shm/", StringComparison.Ordinal)
            || path.StartsWith("/sys/", StringComparison.Ordinal)
            || path.StartsWith("/proc/", StringComparison.Ordinal)
            || path.StartsWith("/dmabuf:", StringComparison.Ordinal)
            || path.StartsWith(HugetlbMemory.AnonymousPrefix, StringComparison.Ordinal);
    }
}
