using CriuPS.Engine.Images.Proto;

namespace CriuPS.Engine.Resources.Process;

/// <summary>
/// A task's ids at every PID namespace level of the tree, outermost first, from pstree.img: the id in the root's
/// namespace, then those in the namespaces below it (criups_ns_pid, criups_ns_tid). The last is the one the task
/// sees; a process one level deeper than its parent is the init of a namespace its parent made (PID 1 there).
/// clone3's set_tid takes them innermost first.
/// </summary>
internal static class PidLevels
{
    public static int[] Process(PstreeEntry entry) => [(int)entry.Pid, .. entry.CriupsNsPid.Select(id => (int)id)];

    /// <summary>The levels of the thread at <paramref name="index"/> in the entry's thread list (0: the leader).</summary>
    public static int[] Thread(PstreeEntry entry, int index)
    {
        if (index == 0)
        {
            return Process(entry);
        }
        int depth = entry.CriupsNsPid.Count;
        return [(int)entry.Threads[index], .. entry.CriupsNsTid.Skip(index * depth).Take(depth).Select(id => (int)id)];
    }

    /// <summary>The PID the process sees itself with (getpid()).</summary>
    public static int Own(PstreeEntry entry) => entry.CriupsNsPid.Count > 0 ? (int)entry.CriupsNsPid[^1] : (int)entry.Pid;

    /// <summary>Whether <paramref name="child"/> is the init of a PID namespace made for it below its parent's.</summary>
    public static bool IsNamespaceInit(PstreeEntry child, PstreeEntry? parent) =>
        child.CriupsNsPid.Count > (parent?.CriupsNsPid.Count ?? -1) && Own(child) == 1;
}
