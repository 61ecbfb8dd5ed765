using System.Globalization;
using System.Text.RegularExpressions;
using CriuPS.Engine.Restore;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// Files under /proc/PID of a process of the saved tree (a parent's open /proc/CHILD/stat, a process's own
/// /proc/PID/status): at restore they can only be opened once the process they name exists again, so the engine opens
/// them after creating the tree, not with the other files.
/// </summary>
internal static partial class ProcFileOfTree
{
    [GeneratedRegex(@"^/proc/(\d+)(?:/task/(\d+))?(/|$)", RegexOptions.CultureInvariant)]
    private static partial Regex ProcessDirectory();

    /// <summary>The pid a /proc path is under (/proc/PID/...), or null for any other path.</summary>
    public static int? PidOf(string path) => Number(ProcessDirectory().Match(path), 1);

    /// <summary>The task a /proc path is about: T of /proc/P/task/T/..., else P of /proc/P/...; null for any other path.</summary>
    public static int? ThreadOf(string path)
    {
        var match = ProcessDirectory().Match(path);
        return Number(match, 2) ?? Number(match, 1);
    }

    private static int? Number(Match match, int group) =>
        match.Success && match.Groups[group].Success && int.TryParse(match.Groups[group].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : null;

    /// <summary>The process (or zombie) of the image that <paramref name="path"/> is under /proc/PID of, or null.</summary>
    public static int? Names(ImageSet images, string path) =>
        PidOf(path) is int pid && images.Tree.Any(p => p.Pid == (uint)pid) ? pid : null;
}
