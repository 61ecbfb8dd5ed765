using System.Buffers.Binary;
using System.Text;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// The functions a vDSO exports, read from its ELF image as the dynamic loader reads them (program headers, the
/// dynamic section, the symbol hash table), so that it works on the bytes of a vDSO saved in an image as well as on a
/// live one. Only 64-bit little-endian images are understood: what an x86-64 kernel maps.
/// </summary>
internal sealed class VdsoSymbols
{
    private const int PtLoad = 1, PtDynamic = 2;
    private const long DtNull = 0, DtHash = 4, DtStrtab = 5, DtSymtab = 6, DtStrsz = 10, DtSyment = 11, DtGnuHash = 0x6ffffef5;
    private const int SymbolSize = 24;
    private const byte SttFunc = 2, StbGlobal = 1, StbWeak = 2;

    private VdsoSymbols(Dictionary<string, VdsoSymbol> byName, int imageLength)
    {
        ByName = byName;
        ImageLength = imageLength;
    }

    /// <summary>Bytes of the image the symbols were read from (the vDSO mapping).</summary>
    public int ImageLength { get; }

    /// <summary>Every defined global or weak function, by name (aliases such as time and __vdso_time each have theirs).</summary>
    public IReadOnlyDictionary<string, VdsoSymbol> ByName { get; }

    /// <summary>Reads the exported functions of the vDSO image <paramref name="image"/> (the whole mapping).</summary>
    /// <exception cref="InvalidDataException">The bytes are not a vDSO this parser understands; the message says why.</exception>
    public static VdsoSymbols Read(ReadOnlySpan<byte> image)
    {
        var elf = new ElfView(image);
        if (image.Length < 64 || image[0] != 0x7f || !image[1..4].SequenceEqual("ELF"u8))
        {
            throw new InvalidDataException("it does not start with an ELF header");
        }
        if (image[4] != 2 || image[5] != 1)
        {
            throw new InvalidDataException("it is not a 64-bit little-endian ELF image");
        }
        ulong phoff = elf.U64(0x20);
        int phentsize = elf.U16(0x36), phnum = elf.U16(0x38);
        if (phentsize < 56)
        {
            throw new InvalidDataException($"its program headers are {phentsize} bytes each");
        }
        (ulong Offset, ulong Vaddr, ulong Size)? load = null;
        (ulong Offset, ulong Size)? dynamic = null;
        for (int i = 0; i < phnum; i++)
        {
            ulong header = phoff + (ulong)(i * phentsize);
            uint type = elf.U32(header);
            if (type == PtLoad && load is null)
            {
                load = (elf.U64(header + 8), elf.U64(header + 16), elf.U64(header + 32));
            }
            else if (type == PtDynamic)
            {
                dynamic = (elf.U64(header + 8), elf.U64(header + 32));
            }
        }
        if (load is null || dynamic is null)
        {
            throw new InvalidDataException("it has no loadable segment or no dynamic section");
        }
        // Addresses in the dynamic section are virtual addresses of the loadable segment; the mapping starts at its offset 0.
        ulong ToOffset(ulong vaddr) => vaddr - load.Value.Vaddr + load.Value.Offset;

        ulong? hash = null, gnuHash = null, strtab = null, symtab = null, strsz = null;
        ulong syment = SymbolSize;
        ulong dynamicEnd = dynamic.Value.Offset + Math.Min(dynamic.Value.Size, (ulong)image.Length);
        for (ulong entry = dynamic.Value.Offset; entry + 16 <= dynamicEnd && (long)elf.U64(entry) != DtNull; entry += 16)
        {
            ulong value = elf.U64(entry + 8);
            switch ((long)elf.U64(entry))
            {
                case DtHash: hash = ToOffset(value); break;
                case DtGnuHash: gnuHash = ToOffset(value); break;
                case DtStrtab: strtab = ToOffset(value); break;
                case DtSymtab: symtab = ToOffset(value); break;
                case DtStrsz: strsz = value; break;
                case DtSyment: syment = value; break;
            }
        }
        if (strtab is null || symtab is null || strsz is null || (hash is null && gnuHash is null))
        {
            throw new InvalidDataException("its dynamic section lacks the symbol table, the string table or a hash table");
        }
        if (syment < SymbolSize)
        {
            throw new InvalidDataException($"its symbols are {syment} bytes each");
        }
        uint count = hash is not null ? elf.U32(hash.Value + 4) : GnuHashSymbolCount(elf, gnuHash!.Value);
        var byName = new Dictionary<string, VdsoSymbol>(StringComparer.Ordinal);
        for (uint i = 1; i < count; i++)
        {
            ulong symbol = symtab.Value + i * syment;
            uint nameOffset = elf.U32(symbol);
            byte info = elf.U8(symbol + 4);
            ushort section = elf.U16(symbol + 6);
            int binding = info >> 4;
            if ((info & 0xf) != SttFunc || section == 0 || (binding != StbGlobal && binding != StbWeak))
            {
                continue;
            }
            if (nameOffset >= strsz.Value)
            {
                throw new InvalidDataException($"symbol {i} names a string outside the string table");
            }
            string name = elf.String(strtab.Value + nameOffset, strtab.Value + strsz.Value);
            ulong offset = ToOffset(elf.U64(symbol + 8));
            ulong size = elf.U64(symbol + 16);
            if (offset >= (ulong)image.Length)
            {
                throw new InvalidDataException($"symbol {name} lies outside the image");
            }
            byName[name] = new VdsoSymbol(name, offset, size);
        }
        return new VdsoSymbols(byName, image.Length);
    }

    // A GNU hash table does not say how many symbols there are: the highest symbol reached from a bucket, followed to
    // the end of its chain (the entry with the low bit set), is the last.
    private static uint GnuHashSymbolCount(ElfView elf, ulong table)
    {
        uint buckets = elf.U32(table), symbolBase = elf.U32(table + 4), bloomWords = elf.U32(table + 8);
        ulong bucketArray = table + 16 + (ulong)bloomWords * 8;
        ulong chains = bucketArray + (ulong)buckets * 4;
        uint last = 0;
        for (uint b = 0; b < buckets; b++)
        {
            last = Math.Max(last, elf.U32(bucketArray + b * 4));
        }
        if (last < symbolBase)
        {
            return symbolBase;
        }
        while ((elf.U32(chains + (ulong)(last - symbolBase) * 4) & 1) == 0)
        {
            last++;
        }
        return last + 1;
    }

    /// <summary>Bounds-checked little-endian reads from an ELF image: a damaged image is a clear error, not a crash.</summary>
    private readonly ref struct ElfView
    {
        private readonly ReadOnlySpan<byte> bytes;

        public ElfView(ReadOnlySpan<byte> bytes) => this.bytes = bytes;

        public byte U8(ulong at) => Slice(at, 1)[0];

        public ushort U16(ulong at) => BinaryPrimitives.ReadUInt16LittleEndian(Slice(at, 2));

        public uint U32(ulong at) => BinaryPrimitives.ReadUInt32LittleEndian(Slice(at, 4));

        public ulong U64(ulong at) => BinaryPrimitives.ReadUInt64LittleEndian(Slice(at, 8));

        public string String(ulong at, ulong limit)
        {
            var rest = Slice(at, (int)Math.Min(limit - at, (ulong)bytes.Length - Math.Min(at, (ulong)bytes.Length)));
            int end = rest.IndexOf((byte)0);
            return Encoding.ASCII.GetString(end < 0 ? rest : rest[..end]);
        }

        private ReadOnlySpan<byte> Slice(ulong at, int length) =>
            at <= (ulong)bytes.Length && (ulong)length <= (ulong)bytes.Length - at
                ? bytes.Slice((int)at, length)
                : throw new InvalidDataException($"it refers to offset 0x{at:x}, beyond its {bytes.Length} bytes");
    }
}

/// <summary>An exported vDSO function: its offset from the start of the mapping and its size in bytes (0: unknown).</summary>
internal readonly record struct VdsoSymbol(string Name, ulong Offset, ulong Size);
