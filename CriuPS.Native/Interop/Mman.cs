namespace CriuPS.Native.Interop;

// Tmds.LibC has most of these as static int properties; these are ulong constants because they are injected calls'
// register values and `const` flag sets (MAP_DROPPABLE, MADV_POPULATE_WRITE and MREMAP_DONTUNMAP it lacks).
// NativeConstantsTests checks every one Tmds.LibC also has against its value, so the two cannot drift apart.
/// <summary>mmap(2), mprotect(2), mremap(2) and madvise(2) constants of x86-64 Linux.</summary>
public static class Mman
{
    public const ulong PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;

    public const ulong MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20;

    /// <summary>A mapping type of its own (not MAP_PRIVATE): anonymous memory whose pages the kernel may drop (Linux 6.11).</summary>
    public const ulong MAP_DROPPABLE = 0x08;
    public const ulong MAP_GROWSDOWN = 0x100, MAP_DENYWRITE = 0x800, MAP_EXECUTABLE = 0x1000, MAP_LOCKED = 0x2000;
    public const ulong MAP_NORESERVE = 0x4000, MAP_POPULATE = 0x8000, MAP_HUGETLB = 0x40000, MAP_FIXED_NOREPLACE = 0x100000;

    public const ulong MREMAP_MAYMOVE = 1, MREMAP_FIXED = 2, MREMAP_DONTUNMAP = 4;

    public const int MADV_NORMAL = 0, MADV_RANDOM = 1, MADV_SEQUENTIAL = 2, MADV_WILLNEED = 3, MADV_DONTNEED = 4;
    public const int MADV_DONTFORK = 10, MADV_DOFORK = 11, MADV_MERGEABLE = 12, MADV_UNMERGEABLE = 13;
    public const int MADV_HUGEPAGE = 14, MADV_NOHUGEPAGE = 15, MADV_DONTDUMP = 16, MADV_DODUMP = 17;
    public const int MADV_WIPEONFORK = 18, MADV_KEEPONFORK = 19, MADV_POPULATE_WRITE = 23;

    /// <summary>mlock2(2): lock the pages as they are touched, not all at once (VmFlags "lf").</summary>
    public const ulong MLOCK_ONFAULT = 1;

    /// <summary>The lowest address user mappings may use by default (vm.mmap_min_addr); CRIU also assumes 64 KiB.</summary>
    public const ulong MinAddress = 0x10000;

    /// <summary>TASK_SIZE of x86-64 with 4-level paging: the end of user address space.</summary>
    public const ulong TaskSize = 0x7ffffffff000;
}
