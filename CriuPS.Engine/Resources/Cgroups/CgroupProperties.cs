namespace CriuPS.Engine.Resources.Cgroups;

/// <summary>
/// The files of a cgroup that are saved with it, per controller: CRIU's built-in list (criu/cgroup-props.c), with
/// the v2 controllers' limits added (CRIU saves only the global files of a v2 cgroup, so a v2 memory or pids limit
/// would be lost). Files a kernel lacks are skipped. Never saved: cgroup.procs and tasks (the members are the sets),
/// and the freezer's state and cgroup.freeze (a cgroup frozen for the dump, by -FreezeCgroup, must not come back frozen).
/// </summary>
internal static class CgroupProperties
{
    private static readonly Dictionary<string, string[]> ByController = new(StringComparer.Ordinal)
    {
        ["cpu"] = ["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.rt_period_us", "cpu.rt_runtime_us", "cpu.max", "cpu.weight", "cpu.weight.nice"],
        ["memory"] = ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.swappiness", "memory.soft_limit_in_bytes",
            "memory.move_charge_at_immigrate", "memory.oom_control", "memory.use_hierarchy", "memory.kmem.limit_in_bytes",
            "memory.kmem.tcp.limit_in_bytes", "memory.max", "memory.high", "memory.low", "memory.min", "memory.swap.max"],
        ["cpuset"] = ["cpuset.cpus", "cpuset.mems", "cpuset.memory_migrate", "cpuset.cpu_exclusive", "cpuset.mem_exclusive",
            "cpuset.mem_hardwall", "cpuset.memory_spread_page", "cpuset.memory_spread_slab", "cpuset.sched_load_balance",
            "cpuset.sched_relax_domain_level"],
        ["blkio"] = ["blkio.weight"],
        ["io"] = ["io.weight"],
        ["net_cls"] = ["net_cls.classid"],
        ["net_prio"] = ["net_prio.ifpriomap"],
        ["pids"] = ["pids.max"],
        ["devices"] = ["devices.list"],
    };

    // Every v1 cgroup's, and every v2 cgroup's (cgroup.type first: a threaded cgroup must be one before it gets members).
    private static readonly string[] GlobalV1 = ["cgroup.clone_children", "notify_on_release"];
    private static readonly string[] GlobalV2 = ["cgroup.type", "cgroup.subtree_control", "cgroup.max.descendants", "cgroup.max.depth"];

    /// <summary>
    /// CRIU's special properties: those that cannot be written once the cgroup has children or members (an empty
    /// cpuset takes no task), written first, as soon as the cgroup is made.
    /// </summary>
    private static readonly HashSet<string> Special = new(StringComparer.Ordinal)
    {
        "cpuset.cpus", "cpuset.mems", "devices.list", "memory.kmem.limit_in_bytes", "memory.swappiness", "memory.oom_control",
        "memory.use_hierarchy", "cgroup.type",
    };

    /// <summary>The files saved for a cgroup of <paramref name="hierarchy"/> in <paramref name="directory"/>, in the order they are written back.</summary>
    public static IEnumerable<string> For(CgroupHierarchy hierarchy, string directory)
    {
        // A v2 cgroup has the files of the controllers its parent enables for it (cgroup.controllers).
        var controllers = hierarchy.IsV2 ? ReadValue(Path.Combine(directory, "cgroup.controllers"))?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [] : hierarchy.Controllers;
        var names = (hierarchy.IsV2 ? GlobalV2 : GlobalV1).Concat(controllers.SelectMany(c => ByController.GetValueOrDefault(c) ?? []));
        return names.OrderBy(n => Special.Contains(n) ? 0 : 1).Where(n => File.Exists(Path.Combine(directory, n)));
    }

    /// <summary>Whether <paramref name="name"/> must be written before the cgroup gets children or members.</summary>
    public static bool IsSpecial(string name) => Special.Contains(name);

    /// <summary>
    /// A file's value as saved: trimmed, and memory.oom_control reduced to its oom_kill_disable (the only part that
    /// can be written back), as CRIU saves it. Null when it cannot be read (a file some kernels refuse to read).
    /// </summary>
    public static string? Read(string directory, string name)
    {
        var value = ReadValue(Path.Combine(directory, name));
        if (value is not null && name == "memory.oom_control")
        {
            var disable = value.Split('\n').FirstOrDefault(l => l.StartsWith("oom_kill_disable ", StringComparison.Ordinal));
            value = disable?["oom_kill_disable ".Length..];
        }
        return value;
    }

    private static string? ReadValue(string file)
    {
        try
        {
            return File.ReadAllText(file).TrimEnd('\n');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
