using System.Buffers.Text;
using System.Text;
using CriuPS.Native.Memory;

namespace CriuPS.Native.Proc;

/// <summary>Parses /proc/PID/smaps: the memory areas of a process with their VmFlags.</summary>
public static class SmapsParser
{
    public static List<VmaInfo> Read(int pid) => ReadAreas($"/proc/{pid}/smaps");

    /// <summary>The areas alone, without their VmFlags, from /proc/PID/maps: a fraction of smaps' size.</summary>
    public static List<VmaInfo> ReadMaps(int pid) => ReadAreas($"/proc/{pid}/maps");

    /// <summary>Parses the text of smaps (or maps) whole.</summary>
    public static List<VmaInfo> Parse(ReadOnlySpan<byte> text)
    {
        var areas = new AreaLines();
        ProcFiles.ForEachLine(text, areas.Add);
        return areas.Finish();
    }

    private static List<VmaInfo> ReadAreas(string path)
    {
        var areas = new AreaLines();
        ProcFiles.ReadLines(path, areas.Add);
        return areas.Finish();
    }

    /// <summary>
    /// The areas of smaps (or maps) as its lines come: of the twenty-odd lines per area only the header,
    /// KernelPageSize and VmFlags matter, and only those are decoded. One object per area: a dump of 10,000 areas
    /// reads them up to five times (maps and smaps, ahead of the freeze and in it), and text decoded per line, a copy
    /// of the area per line that adds to it and a string per VmFlags line made the parse cost as much again as the
    /// kernel's writing of the text, much of it in the first touch of the collector's fresh memory (perf, 2026-12-07).
    /// </summary>
    private sealed class AreaLines
    {
        private readonly List<VmaInfo> areas = [];
        private readonly RecentFlagLines flagLines = new();
        private readonly LastPath paths = new();
        private Header? current;
        private VmFlagSet flags = VmFlagSet.Empty;
        private ulong pageSize;

        public void Add(ReadOnlySpan<byte> line)
        {
            if (IsHeader(line))
            {
                Close();
                current = ParseHeader(line, paths);
            }
            else if (current is null)
            {
                return;
            }
            else if (line.StartsWith("VmFlags:"u8))
            {
                flags = flagLines.Get(line["VmFlags:".Length..]);
            }
            else if (line.StartsWith("KernelPageSize:"u8))
            {
                pageSize = KiB(line["KernelPageSize:".Length..]) << 10;
            }
        }

        public List<VmaInfo> Finish()
        {
            Close();
            return areas;
        }

        private void Close()
        {
            if (current is { } done)
            {
                areas.Add(done.ToArea(flags, pageSize));
            }
            current = null;
            flags = VmFlagSet.Empty;
            pageSize = 0;
        }
    }

    /// <summary>Parses a /proc/PID/maps line.</summary>
    public static VmaInfo ParseHeader(string line) => ParseHeader(Encoding.UTF8.GetBytes(line), new LastPath()).ToArea(VmFlagSet.Empty, 0);

    // A header starts with "start-end" in lower-case hex; the other smaps lines start with a capitalised "Name:" key.
    private static bool IsHeader(ReadOnlySpan<byte> line)
    {
        if (line.IsEmpty || !IsHexDigit(line[0]))
        {
            return false;
        }
        int dash = line.IndexOf((byte)'-');
        return dash > 0 && line[..dash].IndexOfAnyExcept("0123456789abcdef"u8) < 0;
    }

    // "start-end perms offset major:minor inode path": the path (UTF-8, possibly with spaces) is decoded only when
    // it differs from the area before (a library's areas follow each other; anonymous areas have none).
    private static Header ParseHeader(ReadOnlySpan<byte> line, LastPath paths)
    {
        var rest = line;
        var range = NextField(ref rest);
        var perms = NextField(ref rest);
        var offset = NextField(ref rest);
        var dev = NextField(ref rest);
        var inode = NextField(ref rest);
        var path = rest.TrimStart((byte)' ');
        int dash = range.IndexOf((byte)'-');
        int colon = dev.IndexOf((byte)':');
        if (dash < 0 || colon < 0 || perms.Length < 4)
        {
            throw new FormatException($"Not an area of /proc/PID/maps: '{Encoding.UTF8.GetString(line)}'.");
        }
        return new Header(
            new AddressRange(Hex(range[..dash]), Hex(range[(dash + 1)..])),
            perms[0] == 'r',
            perms[1] == 'w',
            perms[2] == 'x',
            perms[3] == 's',
            Hex(offset),
            (uint)Hex(dev[..colon]),
            (uint)Hex(dev[(colon + 1)..]),
            Decimal(inode),
            paths.Decode(path));
    }

    private static ReadOnlySpan<byte> NextField(ref ReadOnlySpan<byte> rest)
    {
        rest = rest.TrimStart((byte)' ');
        int end = rest.IndexOf((byte)' ');
        var field = end < 0 ? rest : rest[..end];
        rest = end < 0 ? ReadOnlySpan<byte>.Empty : rest[end..];
        return field;
    }

    // "   2048 kB" as 2048.
    private static ulong KiB(ReadOnlySpan<byte> value) =>
        Utf8Parser.TryParse(value.TrimStart((byte)' '), out ulong kib, out _) ? kib
            : throw new FormatException($"Not a size in kB: '{Encoding.ASCII.GetString(value)}'.");

    private static ulong Decimal(ReadOnlySpan<byte> digits) =>
        Utf8Parser.TryParse(digits, out ulong value, out int used) && used == digits.Length ? value
            : throw new FormatException($"Not a decimal number: '{Encoding.ASCII.GetString(digits)}'.");

    private static ulong Hex(ReadOnlySpan<byte> digits) =>
        Utf8Parser.TryParse(digits, out ulong value, out int used, 'x') && used == digits.Length ? value
            : throw new FormatException($"Not a 64-bit hexadecimal number: '{Encoding.ASCII.GetString(digits)}'.");

    private static bool IsHexDigit(byte b) => b is >= (byte)'0' and <= (byte)'9' or >= (byte)'a' and <= (byte)'f';

    private readonly record struct Header(AddressRange Range, bool Readable, bool Writable, bool Executable, bool Shared, ulong Offset,
        uint DevMajor, uint DevMinor, ulong Inode, string Path)
    {
        public VmaInfo ToArea(VmFlagSet flags, ulong kernelPageSize) =>
            new(Range, Readable, Writable, Executable, Shared, Offset, DevMajor, DevMinor, Inode, Path, flags) { KernelPageSize = kernelPageSize };
    }

    /// <summary>The path of the area before, as bytes and decoded: the next area's path, when the same, is not decoded again.</summary>
    private sealed class LastPath
    {
        private byte[] bytes = [];
        private string text = "";

        public string Decode(ReadOnlySpan<byte> path)
        {
            if (!path.SequenceEqual(bytes))
            {
                bytes = path.ToArray();
                text = Encoding.UTF8.GetString(path);
            }
            return text;
        }
    }

    /// <summary>
    /// The VmFlags lines met lately, each with its set: the areas of a process share a handful of lines ("rd wr mr mw
    /// me ac sd" for most of its anonymous memory), so one set serves them all.
    /// </summary>
    private sealed class RecentFlagLines
    {
        private const int Kept = 8;
        private readonly List<(byte[] Line, VmFlagSet Flags)> recent = new(Kept);
        private int next;

        public VmFlagSet Get(ReadOnlySpan<byte> line)
        {
            line = line.Trim((byte)' ');
            foreach (var (seen, flags) in recent)
            {
                if (line.SequenceEqual(seen))
                {
                    return flags;
                }
            }
            var made = new VmFlagSet(Encoding.ASCII.GetString(line));
            if (recent.Count < Kept)
            {
                recent.Add((line.ToArray(), made));
            }
            else
            {
                recent[next] = (line.ToArray(), made);
                next = (next + 1) % Kept;
            }
            return made;
        }
    }
}
