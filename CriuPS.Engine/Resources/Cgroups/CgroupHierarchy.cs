using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Cgroups;

/// <summary>
/// One cgroup hierarchy mounted here: a v1 hierarchy named by its controllers as /proc/PID/cgroup names it ("cpu",
/// "cpu,cpuacct", "name=systemd"), or cgroup v2, whose name is empty (as CRIU names it in cgroup.img).
/// </summary>
internal sealed record CgroupHierarchy(string Name, string MountPoint, string MountRoot)
{
    public bool IsV2 => Name.Length == 0;

    /// <summary>How messages name it: its controllers, or "v2".</summary>
    public string Shown => IsV2 ? "v2" : Name;

    /// <summary>The controllers of a v1 hierarchy, as cg_controller_entry.cnames lists them ("" for v2).</summary>
    public IReadOnlyList<string> Controllers => IsV2 ? [""] : Name.Split(',');

    /// <summary>
    /// The directory of the cgroup at <paramref name="path"/> (a path as /proc/PID/cgroup shows it, from the root of
    /// the hierarchy), or null when the mount shows only a subtree that does not hold it.
    /// </summary>
    public string? DirectoryOf(string path)
    {
        string root = MountRoot.TrimEnd('/');
        if (root.Length > 0 && path != root && !path.StartsWith(root + "/", StringComparison.Ordinal))
        {
            return null;
        }
        return MountPoint.TrimEnd('/') + path[root.Length..].TrimEnd('/');
    }

    /// <summary>Every hierarchy mounted in this mount namespace, the first mount of each, keyed by name.</summary>
    public static Dictionary<string, CgroupHierarchy> Mounted(string mountinfo = "/proc/self/mountinfo")
    {
        var subsystems = KernelControllers();
        var mounted = new Dictionary<string, CgroupHierarchy>(StringComparer.Ordinal);
        foreach (var line in File.ReadAllLines(mountinfo))
        {
            // "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw": root, mount point; after " - ": type, source, options.
            var fields = line.Split(' ');
            int separator = Array.IndexOf(fields, "-");
            if (separator < 0 || fields.Length < separator + 4 || fields[separator + 1] is not ("cgroup" or "cgroup2"))
            {
                continue;
            }
            string name = fields[separator + 1] == "cgroup2" ? "" : string.Join(',', fields[separator + 3].Split(',')
                .Where(o => subsystems.Contains(o) || o.StartsWith("name=", StringComparison.Ordinal))
                .OrderBy(o => o.StartsWith("name=", StringComparison.Ordinal) ? 1 : 0).ThenBy(o => subsystems.IndexOf(o)));
            mounted.TryAdd(name, new CgroupHierarchy(name, MountInfo.Unescape(fields[4]), MountInfo.Unescape(fields[3])));
        }
        return mounted;
    }

    // /proc/cgroups lists the v1 controllers in the kernel's order, the order /proc/PID/cgroup names them in.
    private static List<string> KernelControllers() =>
        File.ReadAllLines("/proc/cgroups").Where(l => !l.StartsWith('#')).Select(l => l.Split('\t')[0]).ToList();
}
