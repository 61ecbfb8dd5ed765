using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>mmap(2) and munmap(2) in this process.</summary>
public static unsafe class Mmap
{
    /// <summary>Maps <paramref name="length"/> bytes of new MAP_SHARED|MAP_ANONYMOUS memory (a new shmem object) and returns its address.</summary>
    /// <remarks><paramref name="hugetlbFlags"/>: MAP_HUGETLB and its size bits for an object of huge pages, or 0.</remarks>
    public static ulong SharedAnonymous(ulong length, ulong hugetlbFlags = 0)
    {
        void* address = LibC.mmap(null, (size_t)length, (int)(Mman.PROT_READ | Mman.PROT_WRITE), (int)(Mman.MAP_SHARED | Mman.MAP_ANONYMOUS | hugetlbFlags), -1, 0);
        if (address == (void*)-1)
        {
            throw new NativeException("mmap(MAP_SHARED|MAP_ANONYMOUS)", LibC.errno, $"{length} bytes");
        }
        return (ulong)address;
    }

    /// <summary>Maps <paramref name="length"/> bytes of new MAP_PRIVATE|MAP_ANONYMOUS memory, readable and writable, and returns its address.</summary>
    public static ulong PrivateAnonymous(ulong length)
    {
        void* address = LibC.mmap(null, (size_t)length, (int)(Mman.PROT_READ | Mman.PROT_WRITE), (int)(Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS), -1, 0);
        if (address == (void*)-1)
        {
            throw new NativeException("mmap(MAP_PRIVATE|MAP_ANONYMOUS)", LibC.errno, $"{length} bytes");
        }
        return (ulong)address;
    }

    /// <summary>Maps <paramref name="length"/> bytes of the file behind <paramref name="file"/> from its start, MAP_SHARED, readable and writable.</summary>
    public static ulong SharedFile(FileDescriptor file, ulong length)
    {
        void* address = LibC.mmap(null, (size_t)length, (int)(Mman.PROT_READ | Mman.PROT_WRITE), (int)Mman.MAP_SHARED, file.Value, 0);
        if (address == (void*)-1)
        {
            throw new NativeException("mmap(MAP_SHARED) of a file", LibC.errno, $"{length} bytes");
        }
        return (ulong)address;
    }

    public static void Munmap(ulong address, ulong length)
    {
        if (LibC.munmap((void*)address, (size_t)length) != 0)
        {
            throw new NativeException("munmap", LibC.errno);
        }
    }
}
