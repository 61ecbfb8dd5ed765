using System.Numerics;

namespace CriuPS.Native.Memory;

/// <summary>The free and reserved pages of one huge page size (/sys/kernel/mm/hugepages/hugepages-NkB).</summary>
public sealed record HugePagePool(ulong PageSize, ulong Total, ulong Free, ulong Reserved)
{
    /// <summary>Pages a new mapping can still reserve: the free ones not promised to mappings already made.</summary>
    public ulong Available => Free > Reserved ? Free - Reserved : 0;
}
