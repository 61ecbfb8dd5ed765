using System.Globalization;
using CriuPS.Native.Memory;

namespace CriuPS.Native.Proc;

/// <summary>Parses /proc/PID/smaps: the memory areas of a process with their VmFlags.</summary>
public static class SmapsParser
{
    public static List<VmaInfo> Read(int pid) => Parse(File.ReadAllText($"/proc/{pid}/smaps"));

    public static List<VmaInfo> Parse(string text)
    {
        var result = new List<VmaInfo>();
        VmaInfo? current = null;
        foreach (var line in text.AsSpan().EnumerateLines())
        {
            if (line.IsEmpty)
            {
                continue;
            }
            if (IsHeader(line))
            {
                if (current is not null)
                {
                    result.Add(current);
                }
                current = ParseHeader(line);
            }
            else if (line.StartsWith("VmFlags:") && current is not null)
            {
                var flags = line["VmFlags:".Length..].ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                current = current with { VmFlags = new HashSet<string>(flags) };
            }
        }
        if (current is not null)
        {
            result.Add(current);
        }
        return result;
    }

    // A header starts with "start-end"; the other smaps lines start with a "Name:" key.
    private static bool IsHeader(ReadOnlySpan<char> line)
    {
        int dash = line.IndexOf('-');
        int space = line.IndexOf(' ');
        return dash > 0 && space > dash && line[..dash].IndexOfAnyExcept("0123456789abcdef") < 0;
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
            new HashSet<string>());
    }

    private static ReadOnlySpan<char> NextField(ref ReadOnlySpan<char> rest)
    {
        rest = rest.TrimStart(' ');
        int end = rest.IndexOf(' ');
        var field = end < 0 ? rest : rest[..end];
        rest = end < 0 ? ReadOnlySpan<char>.Empty : rest[end..];
        return field;
    }

    private static ulong Hex(ReadOnlySpan<char> text) => ulong.Parse(text, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}
