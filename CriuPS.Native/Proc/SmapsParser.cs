using System.Globalization;
using System.Text;
using CriuPS.Native.Memory;

namespace CriuPS.Native.Proc;

/// <summary>Parses /proc/PID/smaps: the memory areas of a process with their VmFlags.</summary>
public static class SmapsParser
{
    public static List<VmaInfo> Read(int pid) => ProcFiles.ParseWhole($"/proc/{pid}/smaps", Parse);

    /// <summary>The areas alone, without their VmFlags, from /proc/PID/maps: a fraction of smaps' size.</summary>
    public static List<VmaInfo> ReadMaps(int pid) => ProcFiles.ParseWhole($"/proc/{pid}/maps", Parse);

    /// <summary>
    /// Parses smaps as bytes: of the twenty-odd lines per area only the header and VmFlags matter, and only those
    /// are decoded (a header's path may be UTF-8).
    /// </summary>
    public static List<VmaInfo> Parse(ReadOnlySpan<byte> text)
    {
        var result = new List<VmaInfo>();
        VmaInfo? current = null;
        while (!text.IsEmpty)
        {
            int end = text.IndexOf((byte)'\n');
            var line = end < 0 ? text : text[..end];
            text = end < 0 ? ReadOnlySpan<byte>.Empty : text[(end + 1)..];
            if (line.IsEmpty)
            {
                continue;
            }
            if (line.StartsWith("VmFlags:"u8) && current is not null)
            {
                current = current with { VmFlags = new VmFlagSet(Encoding.ASCII.GetString(line["VmFlags:".Length..])) };
            }
            else if (line.StartsWith("KernelPageSize:"u8) && current is not null)
            {
                current = current with { KernelPageSize = KiB(line["KernelPageSize:".Length..]) << 10 };
            }
            else if (IsHeader(line))
            {
                if (current is not null)
                {
                    result.Add(current);
                }
                current = ParseHeader(Encoding.UTF8.GetString(line));
            }
        }
        if (current is not null)
        {
            result.Add(current);
        }
        return result;
    }

    // A header starts with "start-end" in lower-case hex; the other smaps lines start with a capitalised "Name:" key.
    private static bool IsHeader(ReadOnlySpan<byte> line)
    {
        int dash = line.IndexOf((byte)'-');
        return dash > 0 && line[..dash].IndexOfAnyExcept("0123456789abcdef"u8) < 0;
    }

    /// <summary>Parses a /proc/PID/maps line.</summary>
    public static VmaInfo ParseHeader(ReadOnlySpan<char> line)
    {
        var rest = line;
        var range = NextField(ref rest);
        var perms = NextField(ref rest);
        var offset = NextField(ref rest);
        var dev = NextField(ref rest);
        var inode = NextField(ref rest);
        var path = rest.TrimStart(' ').ToString();

        int dash = range.IndexOf('-');
        int colon = dev.IndexOf(':');
        return new VmaInfo(
            new AddressRange(Hex(range[..dash]), Hex(range[(dash + 1)..])),
            perms[0] == 'r',
            perms[1] == 'w',
            perms[2] == 'x',
            perms[3] == 's',
            Hex(offset),
            (uint)Hex(dev[..colon]),
            (uint)Hex(dev[(colon + 1)..]),
            ulong.Parse(inode, CultureInfo.InvariantCulture),
            path,
            VmFlagSet.Empty);
    }

    private static ReadOnlySpan<char> NextField(ref ReadOnlySpan<char> rest)
    {
        rest = rest.TrimStart(' ');
        int end = rest.IndexOf(' ');
        var field = end < 0 ? rest : rest[..end];
        rest = end < 0 ? ReadOnlySpan<char>.Empty : rest[end..];
        return field;
    }

    // "   2048 kB" as 2048.
    private static ulong KiB(ReadOnlySpan<byte> value) =>
        ulong.Parse(Encoding.ASCII.GetString(value).Replace("kB", "", StringComparison.Ordinal).Trim(), CultureInfo.InvariantCulture);

    private static ulong Hex(ReadOnlySpan<char> text) => ulong.Parse(text, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}
