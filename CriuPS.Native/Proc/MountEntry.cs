using System.Globalization;

namespace CriuPS.Native.Proc;

/// <summary>
/// One line of /proc/PID/mountinfo (proc(5)): "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue".
/// Paths are unescaped; <see cref="SharedId"/> and <see cref="MasterId"/> are 0 when the mount has no such peer group.
/// </summary>
public sealed record MountEntry(
    int Id, int ParentId, uint Major, uint Minor, string Root, string MountPoint, string Options,
    int SharedId, int MasterId, string FsType, string Source, string SuperOptions)
{
    /// <summary>Every mount of the mountinfo file <paramref name="path"/>, in the kernel's order (parents before children).</summary>
    public static List<MountEntry> Read(string path) => Parse(File.ReadAllText(path));

    /// <summary>Every line of a mountinfo text; FormatException on a line that is not one.</summary>
    public static List<MountEntry> Parse(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(ParseLine).ToList();

    private static MountEntry ParseLine(string line)
    {
        var fields = line.Split(' ');
        int separator = Array.IndexOf(fields, "-", 6);
        if (fields.Length < 10 || separator < 0 || fields.Length < separator + 4)
        {
            throw new FormatException($"not a mountinfo line: '{line}'");
        }
        var device = fields[2].Split(':');
        int shared = 0, master = 0;
        foreach (var tag in fields[6..separator])
        {
            if (tag.StartsWith("shared:", StringComparison.Ordinal))
            {
                shared = Number(tag["shared:".Length..]);
            }
            else if (tag.StartsWith("master:", StringComparison.Ordinal))
            {
                master = Number(tag["master:".Length..]);
            }
        }
        return new MountEntry(
            Number(fields[0]), Number(fields[1]),
            uint.Parse(device[0], CultureInfo.InvariantCulture), uint.Parse(device[1], CultureInfo.InvariantCulture),
            MountInfo.Unescape(fields[3]), MountInfo.Unescape(fields[4]), fields[5], shared, master,
            fields[separator + 1], MountInfo.Unescape(fields[separator + 2]), fields[separator + 3]);
    }

    private static int Number(string text) => int.Parse(text, CultureInfo.InvariantCulture);
}
