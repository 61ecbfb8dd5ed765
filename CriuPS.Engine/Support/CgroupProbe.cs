namespace CriuPS.Engine.Support;

/// <summary>Lists the cgroup hierarchies mounted in our mount namespace (/proc/self/mountinfo).</summary>
internal sealed class CgroupProbe : FeatureProbe
{
    public override string Name => "Cgroups";

    public override bool Essential => false;

    public override string Requirement => "a cgroup v2 hierarchy (unified) or cgroup v1 hierarchies mounted";

    public override string Impact => "Cgroup membership and controller settings cannot be saved; restored processes join the cgroups of the restoring PowerShell.";

    public override (bool, string) Check()
    {
        var v1 = new List<string>();
        var v2 = new List<string>();
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
            var halves = line.Split(" - ", 2);
            if (halves.Length < 2)
            {
                continue;
            }
            var mount = halves[0].Split(' ');
            var filesystem = halves[1].Split(' ');
            if (filesystem[0] == "cgroup2")
            {
                v2.Add(mount[4]);
            }
            else if (filesystem[0] == "cgroup" && filesystem.Length > 2)
            {
                // v1 superblock options name the controllers (or name=...) among rw and the like.
                var controllers = filesystem[2].Split(',').Where(o => o is not ("rw" or "ro") && !o.StartsWith("release_agent=", StringComparison.Ordinal));
                v1.Add($"{string.Join("+", controllers)} at {mount[4]}");
            }
        }
        string layout = (v1.Count, v2.Count) switch
        {
            (0, 0) => "no cgroup hierarchy is mounted",
            (0, _) => $"unified (v2 only) at {string.Join(", ", v2)}",
            (_, 0) => $"legacy (v1 only): {string.Join("; ", v1)}",
            _ => $"hybrid: v2 at {string.Join(", ", v2)}; v1: {string.Join("; ", v1)}",
        };
        return (v1.Count + v2.Count > 0, layout);
    }
}
