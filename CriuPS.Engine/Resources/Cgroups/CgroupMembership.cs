namespace CriuPS.Engine.Resources.Cgroups;

/// <summary>Where a task sits: /proc/PID/task/TID/cgroup, one line per hierarchy ("4:memory:/path", v2 "0::/path").</summary>
internal static class CgroupMembership
{
    /// <summary>The hierarchy name (controllers, "" for v2) and the cgroup path of each line, in the kernel's order; empty if the task is gone.</summary>
    public static List<(string Hierarchy, string Path)> Of(int pid, int tid) => Read($"/proc/{pid}/task/{tid}/cgroup");

    /// <summary>The same for the process <paramref name="pid"/> as a whole (its leader).</summary>
    public static List<(string Hierarchy, string Path)> Of(int pid) => Read($"/proc/{pid}/cgroup");

    private static List<(string, string)> Read(string file)
    {
        var lines = new List<(string, string)>();
        try
        {
            // Read as /proc's other small files are (one open, read and close): a thread group of 64 threads is read
            // while frozen, and File.ReadAllLines' reader and encoder per file cost a millisecond and more of it.
            foreach (var line in Native.Proc.ProcFiles.ReadText(file).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                int first = line.IndexOf(':');
                int second = first < 0 ? -1 : line.IndexOf(':', first + 1);
                if (second > 0)
                {
                    lines.Add((line[(first + 1)..second], line[(second + 1)..]));
                }
            }
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            // the task ended meanwhile
        }
        return lines;
    }
}
