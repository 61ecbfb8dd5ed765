using System.Globalization;

namespace CriuPS.Completers;

/// <summary>The processes a completion may offer: those with a user space (no kernel threads), not this one, by PID.</summary>
internal static class RunningProcesses
{
    public sealed record Entry(int Id, string Name, string CommandLine);

    public static IEnumerable<Entry> List()
    {
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) || pid == Environment.ProcessId)
            {
                continue;
            }
            Entry? entry = null;
            try
            {
                // Kernel threads (and zombies) have no command line: there is nothing of theirs to checkpoint.
                var commandLine = File.ReadAllText(Path.Combine(directory, "cmdline")).Replace('\0', ' ').Trim();
                if (commandLine.Length > 0)
                {
                    entry = new Entry(pid, File.ReadAllText(Path.Combine(directory, "comm")).TrimEnd('\n'), commandLine);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // gone meanwhile, or not ours to see
            }
            if (entry is not null)
            {
                yield return entry;
            }
        }
    }
}
