using CriuPS.Native.Interop;

namespace CriuPS.Engine.Resources.Cgroups;

/// <summary>
/// Waits on cgroup v2's cgroup.events ("populated 0|1", "frozen 0|1"). The kernel reports each change of that file
/// as a modification (cgroup-v2.rst: "a value change in this file generates a file modified event"), so a wait is
/// an inotify watch and poll(2), never a loop of reads. cgroup v1 has no such file.
/// </summary>
internal static class CgroupEvents
{
    private const uint Modified = 0x2; // IN_MODIFY

    /// <summary>Whether the cgroup at <paramref name="directory"/> is of cgroup v2 (has a cgroup.events).</summary>
    public static bool Has(string directory) => File.Exists(Path.Combine(directory, "cgroup.events"));

    /// <summary>
    /// Waits until the cgroup.events of <paramref name="directory"/> has the line <paramref name="line"/> (as
    /// "frozen 1"), at most <paramref name="timeout"/>; true when it has.
    /// </summary>
    public static bool WaitFor(string directory, string line, TimeSpan timeout)
    {
        string events = Path.Combine(directory, "cgroup.events");
        using var inotify = Inotify.Create(O.NONBLOCK);
        Inotify.AddWatch(inotify, events, Modified); // before the first read: a change after that read wakes the poll
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        Span<byte> drained = stackalloc byte[4096];
        while (!File.ReadAllLines(events).Contains(line))
        {
            long left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                return false;
            }
            if (Poll.Readable(inotify, (int)Math.Min(left, int.MaxValue)))
            {
                while (inotify.TryRead(drained) > 0)
                {
                }
            }
        }
        return true;
    }
}
