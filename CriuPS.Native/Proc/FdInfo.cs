using System.Globalization;
using System.Text.RegularExpressions;

namespace CriuPS.Native.Proc;

/// <summary>/proc/PID/fdinfo/FD: position, open flags, and the other lines (mnt_id, eventfd-count, tfd, ...).</summary>
public sealed partial class FdInfo
{
    private FdInfo(ulong position, int flags, List<KeyValuePair<string, string>> lines)
    {
        Position = position;
        Flags = flags;
        Lines = lines;
    }

    public ulong Position { get; }

    /// <summary>The open flags of the file description, O_CLOEXEC of the descriptor included.</summary>
    public int Flags { get; }

    /// <summary>Every "key: value" line in order (some keys, like "tfd", repeat).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Lines { get; }

    public static FdInfo Read(int pid, int fd) => Parse(ProcFiles.ReadText($"/proc/{pid}/fdinfo/{fd}"));

    public static FdInfo Parse(string text)
    {
        var lines = new List<KeyValuePair<string, string>>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int colon = line.IndexOf(':');
            if (colon > 0)
            {
                lines.Add(new(line[..colon].Trim(), line[(colon + 1)..].Trim()));
            }
        }
        string Value(string key) => lines.FirstOrDefault(l => l.Key == key).Value ?? "0";
        return new FdInfo(
            ulong.Parse(Value("pos"), CultureInfo.InvariantCulture),
            Convert.ToInt32(Value("flags"), 8),
            lines);
    }

    public string? Get(string key) => Lines.FirstOrDefault(l => l.Key == key).Value;

    /// <summary>
    /// The lines that start with <paramref name="key"/> and hold several "name:value" fields, as
    /// "tfd: 5 events: 19 data: 7 pos:0 ..." or "inotify wd:2 ino:35a ...": one dictionary per line, the
    /// leading field under the last word of the key ("tfd", "wd").
    /// </summary>
    public IReadOnlyList<IReadOnlyDictionary<string, string>> Records(string key)
    {
        string leading = key[(key.LastIndexOf(' ') + 1)..];
        return Lines.Where(l => l.Key == key)
            .Select(l => (IReadOnlyDictionary<string, string>)FieldPattern().Matches($"{leading}:{l.Value}")
                .ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value))
            .ToList();
    }

    [GeneratedRegex(@"([A-Za-z_][\w-]*):\s*(\S+)")]
    private static partial Regex FieldPattern();
}
