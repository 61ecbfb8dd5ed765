namespace CriuPS.Native.Memory;

/// <summary>The page size of x86-64 Linux; CRIU's images count memory in these pages.</summary>
public static class Page
{
    public const int Size = 4096;
    public const int Shift = 12;

    public static ulong AlignDown(ulong value) => value & ~(ulong)(Size - 1);

    public static ulong AlignUp(ulong value) => (value + Size - 1) & ~(ulong)(Size - 1);
}

/// <summary>A virtual address in some process.</summary>
public readonly record struct Address(ulong Value) : IComparable<Address>
{
    public static readonly Address Null = new(0);

    public static Address operator +(Address a, ByteCount b) => new(a.Value + b.Value);
    public static Address operator -(Address a, ByteCount b) => new(a.Value - b.Value);
    public static ByteCount operator -(Address a, Address b) => new(a.Value - b.Value);
    public static bool operator <(Address a, Address b) => a.Value < b.Value;
    public static bool operator >(Address a, Address b) => a.Value > b.Value;
    public static bool operator <=(Address a, Address b) => a.Value <= b.Value;
    public static bool operator >=(Address a, Address b) => a.Value >= b.Value;

    public int CompareTo(Address other) => Value.CompareTo(other.Value);

    public bool IsPageAligned => (Value & (Page.Size - 1)) == 0;

    public override string ToString() => $"0x{Value:x}";
}

/// <summary>A number of bytes.</summary>
public readonly record struct ByteCount(ulong Value) : IComparable<ByteCount>
{
    public static readonly ByteCount Zero = new(0);

    public static ByteCount operator +(ByteCount a, ByteCount b) => new(a.Value + b.Value);
    public static ByteCount operator -(ByteCount a, ByteCount b) => new(a.Value - b.Value);
    public static bool operator <(ByteCount a, ByteCount b) => a.Value < b.Value;
    public static bool operator >(ByteCount a, ByteCount b) => a.Value > b.Value;
    public static bool operator <=(ByteCount a, ByteCount b) => a.Value <= b.Value;
    public static bool operator >=(ByteCount a, ByteCount b) => a.Value >= b.Value;

    public int CompareTo(ByteCount other) => Value.CompareTo(other.Value);

    /// <summary>Whole pages; the count must be page aligned.</summary>
    public PageCount Pages => new(Value >> Page.Shift);

    public static ByteCount FromMiB(ulong mib) => new(mib << 20);

    public override string ToString() => $"{Value} bytes";
}

/// <summary>A number of pages of <see cref="Page.Size"/> bytes.</summary>
public readonly record struct PageCount(ulong Value) : IComparable<PageCount>
{
    public static readonly PageCount Zero = new(0);

    public static PageCount operator +(PageCount a, PageCount b) => new(a.Value + b.Value);
    public static PageCount operator -(PageCount a, PageCount b) => new(a.Value - b.Value);

    public int CompareTo(PageCount other) => Value.CompareTo(other.Value);

    public ByteCount Bytes => new(Value << Page.Shift);

    public override string ToString() => $"{Value} pages";
}

/// <summary>A half-open range [Start, End) of addresses.</summary>
public readonly record struct AddressRange(Address Start, Address End)
{
    public AddressRange(ulong start, ulong end) : this(new Address(start), new Address(end))
    {
    }

    public ByteCount Length => End - Start;

    public PageCount Pages => Length.Pages;

    public bool IsEmpty => End <= Start;

    public bool Contains(Address address) => address >= Start && address < End;

    public bool Overlaps(AddressRange other) => Start < other.End && other.Start < End;

    /// <summary>The addresses in both ranges (empty when they do not overlap).</summary>
    public AddressRange Intersect(AddressRange other) =>
        Overlaps(other) ? new AddressRange(Start > other.Start ? Start : other.Start, End < other.End ? End : other.End) : new AddressRange(Start, Start);

    public override string ToString() => $"{Start.Value:x}-{End.Value:x}";
}
