using System.Globalization;
using System.Numerics;

namespace CriuPS.Native.Memory;

/// <summary>
/// hugetlb pages: their sizes as mmap (MAP_HUGE_*), memfd_create (MFD_HUGE_*) and shmget (SHM_HUGE_*) encode them
/// (log2 of the size in bits 26-31, 0 for the default size), and the pools this machine has of each size.
/// </summary>
public static class HugePages
{
    public const int SizeShift = 26;
    public const uint SizeMask = 0x3fu << SizeShift;

    /// <summary>The size bits that ask for pages of <paramref name="pageSize"/> bytes (a power of two).</summary>
    public static uint SizeFlag(ulong pageSize) => (uint)BitOperations.Log2(pageSize) << SizeShift;

    /// <summary>The page size the size bits of <paramref name="flags"/> ask for, or null when they leave it to the default.</summary>
    public static ulong? PageSizeOf(uint flags)
    {
        int log2 = (int)((flags & SizeMask) >> SizeShift);
        return log2 == 0 ? null : 1UL << log2;
    }

    /// <summary>This machine's default huge page size (Hugepagesize of /proc/meminfo), or null without hugetlb.</summary>
    public static ulong? DefaultPageSize()
    {
        foreach (var line in File.ReadLines("/proc/meminfo"))
        {
            if (line.StartsWith("Hugepagesize:", StringComparison.Ordinal))
            {
                return ulong.Parse(line["Hugepagesize:".Length..].Replace("kB", "", StringComparison.Ordinal).Trim(), CultureInfo.InvariantCulture) << 10;
            }
        }
        return null;
    }

    /// <summary>The pool of pages of <paramref name="pageSize"/> bytes, or null when this machine has no such size.</summary>
    public static HugePagePool? Pool(ulong pageSize)
    {
        var directory = PoolDirectory(pageSize);
        if (!Directory.Exists(directory))
        {
            return null;
        }
        ulong Read(string name) => ulong.Parse(File.ReadAllText(Path.Combine(directory, name)).Trim(), CultureInfo.InvariantCulture);
        return new HugePagePool(pageSize, Read("nr_hugepages"), Read("free_hugepages"), Read("resv_hugepages"));
    }

    public static string PoolDirectory(ulong pageSize) => $"/sys/kernel/mm/hugepages/hugepages-{pageSize >> 10}kB";
}
