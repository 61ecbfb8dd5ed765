using CriuPS.Engine.Dump;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// Shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS, "/dev/zero (deleted)" in maps): an object of the kernel's
/// internal shmem mount, shared by every process that maps it (fork keeps it shared). CRIU's format: areas with status
/// ANON_SHARED whose shmid is the object's inode, and its contents once in pagemap-shmem-SHMID.img. Restore: the
/// engine creates one new object per shmid by mapping shared anonymous memory itself, keeps a descriptor of it (opened
/// through /proc/self/map_files), unmaps it and fills it; every process then maps that same object at its areas.
/// </summary>
internal static class SharedMemory
{
    /// <summary>Objects already saved in this dump, by inode, with their size.</summary>
    private sealed class SavedObjects
    {
        public Dictionary<ulong, ulong> Sizes { get; } = new();
    }

    /// <summary>Objects created for this restore, by shmid.</summary>
    private sealed class CreatedObjects : IDisposable
    {
        public Dictionary<ulong, FileDescriptor> ByShmid { get; } = new();

        public void Dispose()
        {
            foreach (var file in ByShmid.Values)
            {
                file.Dispose();
            }
        }
    }

    /// <summary>MAP_SHARED|MAP_ANONYMOUS memory; kernels since 6.1 show a named one as [anon_shmem:NAME], and one of huge pages is on hugetlbfs.</summary>
    public static bool IsSharedAnonymous(VmaInfo vma) =>
        vma.Shared && (vma.Path == "/dev/zero (deleted)" || vma.Path.StartsWith("[anon_shmem:", StringComparison.Ordinal) || HugetlbMemory.IsAnonymous(vma));

    /// <summary>Saves the object behind an area, once for the whole tree; returns its size (its mappings may cover less).</summary>
    public static ulong Dump(DumpSession session, int pid, VmaInfo vma)
    {
        var saved = session.State<SavedObjects>();
        if (!saved.Sizes.TryGetValue(vma.Inode, out var size))
        {
            using var file = FileDescriptor.Open(MapFiles.PathOf(pid, vma), O.RDONLY);
            size = FileStatus.Of(file).Size;
            ShmemPages.Dump(session, file, size, vma.Inode);
            saved.Sizes[vma.Inode] = size;
        }
        return size;
    }

    /// <summary>Our descriptor (read-write) of the object that areas with this shmid map, created and filled on first use.</summary>
    public static FileDescriptor Object(RestoreSession session, ulong shmid)
    {
        var created = session.State<CreatedObjects>();
        if (!created.ByShmid.TryGetValue(shmid, out var file))
        {
            file = Create(session, shmid);
            created.ByShmid[shmid] = file;
        }
        return file;
    }

    /// <summary>The size of object <paramref name="shmid"/>: as saved, and never smaller than the furthest any process maps it (all CRIU knows).</summary>
    public static ulong SizeOf(ImageSet images, ulong shmid) =>
        Areas(images, shmid).Max(v => Math.Max(v.Pgoff + (v.End - v.Start), v.CriupsShmemSize));

    private static IEnumerable<VmaEntry> Areas(ImageSet images, ulong shmid) =>
        images.Processes.SelectMany(p => p.Mm.Vmas).Where(v => ((VmaStatus)v.Status & VmaStatus.AnonShared) != 0 && v.Shmid == shmid);

    private static FileDescriptor Create(RestoreSession session, ulong shmid)
    {
        ulong size = Page.AlignUp(SizeOf(session.Images, shmid));
        // An object of huge pages is made so again (its areas carry MAP_HUGETLB and the page size), its size whole pages of that size.
        ulong hugetlb = Areas(session.Images, shmid).Select(v => v.Flags & (Mman.MAP_HUGETLB | HugePages.SizeMask)).FirstOrDefault(f => f != 0);
        if (hugetlb != 0)
        {
            ulong pageSize = HugetlbMemory.PageSizeOf((uint)hugetlb);
            size = (size + pageSize - 1) / pageSize * pageSize;
        }
        ulong address = Mmap.SharedAnonymous(size, hugetlb);
        FileDescriptor file;
        try
        {
            file = FileDescriptor.Open($"/proc/self/map_files/{address:x}-{address + size:x}", O.RDWR);
        }
        finally
        {
            Mmap.Munmap(address, size);
        }
        try
        {
            ShmemPages.Restore(session, shmid, file, size);
        }
        catch
        {
            file.Dispose();
            throw;
        }
        session.Log.Detail($"shared memory {shmid}: created with {size} bytes");
        return file;
    }
}
