using CriuPS.Native.Proc;

namespace CriuPS.Engine.Migration;

/// <summary>What the destination of a move must offer for a process tree of this machine: its PIDs free, the files it uses there.</summary>
public static class SourceFacts
{
    /// <summary>Every PID and TID of the tree under <paramref name="root"/>: the restore takes each of them there.</summary>
    public static IReadOnlyList<int> Ids(int root)
    {
        var ids = new List<int>();
        var pending = new Queue<int>([root]);
        while (pending.TryDequeue(out int pid))
        {
            foreach (var task in Entries($"/proc/{pid}/task"))
            {
                if (int.TryParse(task, out int tid))
                {
                    ids.Add(tid);
                    foreach (var child in Read($"/proc/{pid}/task/{tid}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    {
                        pending.Enqueue(int.Parse(child, System.Globalization.CultureInfo.InvariantCulture));
                    }
                }
            }
        }
        return ids;
    }

    /// <summary>The files the tree's processes map or hold open by path (programs, libraries, open regular files).</summary>
    public static IReadOnlyList<string> Files(int root)
    {
        var files = new SortedSet<string>(StringComparer.Ordinal);
        foreach (int pid in Ids(root).Where(id => Directory.Exists($"/proc/{id}/fd")))
        {
            foreach (var line in Read($"/proc/{pid}/maps").Split('\n'))
            {
                int slash = line.IndexOf(" /", StringComparison.Ordinal);
                if (slash > 0 && !line.EndsWith(" (deleted)", StringComparison.Ordinal))
                {
                    files.Add(line[(slash + 1)..]);
                }
            }
            foreach (var fd in Entries($"/proc/{pid}/fd"))
            {
                string? target = null;
                try
                {
                    target = new FileInfo($"/proc/{pid}/fd/{fd}").LinkTarget;
                }
                catch (IOException)
                {
                }
                if (target is not null && target.StartsWith('/') && !target.StartsWith("/dev/", StringComparison.Ordinal) && !target.StartsWith("/proc/", StringComparison.Ordinal) && !target.EndsWith(" (deleted)", StringComparison.Ordinal) && File.Exists(target))
                {
                    files.Add(target);
                }
            }
        }
        return files.ToList();
    }

    private static IEnumerable<string> Entries(string directory)
    {
        try
        {
            return Directory.GetFileSystemEntries(directory).Select(Path.GetFileName).OfType<string>().ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static string Read(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }
}
