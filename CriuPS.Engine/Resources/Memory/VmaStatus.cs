namespace CriuPS.Engine.Resources.Memory;

/// <summary>The status bits of CRIU's vma_entry (criu/include/image.h): what kind of area a VMA is.</summary>
[Flags]
internal enum VmaStatus : uint
{
    None = 0,
    Regular = 1 << 0,
    Stack = 1 << 1,
    Vsyscall = 1 << 2,
    Vdso = 1 << 3,
    Heap = 1 << 5,
    FilePrivate = 1 << 6,
    FileShared = 1 << 7,
    AnonShared = 1 << 8,
    AnonPrivate = 1 << 9,
    SysVIpc = 1 << 10,
    Socket = 1 << 11,
    Vvar = 1 << 12,
    AioRing = 1 << 13,
    Memfd = 1 << 14,
    ShadowStack = 1 << 15,
    Guard = 1 << 16,
    Uprobes = 1 << 17,
    Unsupported = 1u << 31,
}

/// <summary>Flags of CRIU's pagemap_entry.</summary>
[Flags]
internal enum PagemapFlags : uint
{
    None = 0,
    /// <summary>The pages are in the parent image (incremental dumps).</summary>
    InParent = 1 << 0,
    /// <summary>The pages may be restored lazily (on fault).</summary>
    Lazy = 1 << 1,
    /// <summary>The pages are in this image's pages file.</summary>
    Present = 1 << 2,
}
