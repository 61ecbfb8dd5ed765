using System.Globalization;
using System.Text.RegularExpressions;

namespace CriuPS.Native.Proc;

/// <summary>/proc/PID/mountinfo: where the filesystems are mounted.</summary>
public static partial class MountInfo
{
    /// <summary>The mount points of the filesystem on device <paramref name="major"/>:<paramref name="minor"/>, as this process sees them.</summary>
    public static List<string> MountPointsOf(uint major, uint minor, string mountinfo = "/proc/self/mountinfo") =>
        Parse(File.ReadAllText(mountinfo)).Where(m => m.Major == major && m.Minor == minor).Select(m => m.MountPoint).ToList();

    /// <summary>The mount point of mount <paramref name="mountId"/> (the first field of its line), or null when there is none.</summary>
    public static string? MountPointOf(int mountId, string mountinfo)
    {
        string id = mountId.ToString(CultureInfo.InvariantCulture);
        var line = File.ReadAllText(mountinfo).Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(l => l.Split(' ')[0] == id);
        return line is null ? null : Unescape(line.Split(' ')[4]);
    }

    /// <summary>Each line's device and mount point: "36 35 98:0 /root /mnt ..." is 98:0 at /mnt.</summary>
    public static IEnumerable<(uint Major, uint Minor, string MountPoint)> Parse(string text)
    {
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ');
            var device = fields[2].Split(':');
            yield return (uint.Parse(device[0], CultureInfo.InvariantCulture), uint.Parse(device[1], CultureInfo.InvariantCulture), Unescape(fields[4]));
        }
    }

    /// <summary>A path of mountinfo as it is: the kernel writes space, tab, newline and backslash in paths as \ooo octal escapes.</summary>
    public static string Unescape(string path) =>
        OctalEscape().Replace(path, m => ((char)Convert.ToInt32(m.Groups[1].Value, 8)).ToString());

    [GeneratedRegex(@"\\([0-7]{3})")]
    private static partial Regex OctalEscape();
}
