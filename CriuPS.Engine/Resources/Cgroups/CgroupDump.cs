using CriuPS.Engine.Dump;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;

namespace CriuPS.Engine.Resources.Cgroups;

/// <summary>
/// At dump, once the tree is frozen: where every process and every thread sits in every mounted hierarchy, as CRIU
/// saves it in cgroup.img. Each distinct combination of memberships is a set; a process's core names its leader's
/// set (tc.cg_set) and each thread's core its own (thread_core.cg_set, CRIU 4.0's: threads of one process may sit in
/// different v1 cgroups), and inventory's root_cg_set the root's. Each hierarchy a set uses is saved with the
/// directories on the way to its cgroups (paths from the hierarchy's root, as the process sees them) and their
/// properties (<see cref="CgroupProperties"/>), so that the restore can make a missing one again.
/// </summary>
internal static class CgroupDump
{
    public static void Dump(DumpSession session)
    {
        var mounted = CgroupHierarchy.Mounted();
        var sets = new Dictionary<string, CgSetEntry>(StringComparer.Ordinal);
        foreach (var process in session.Processes)
        {
            foreach (var thread in process.Threads)
            {
                var memberships = CgroupMembership.Of(process.Pid, thread.Tid);
                string key = string.Join('\n', memberships.Select(m => $"{m.Hierarchy}:{m.Path}"));
                if (!sets.TryGetValue(key, out var set))
                {
                    set = new CgSetEntry { Id = (uint)sets.Count + 1 };
                    set.Ctls.Add(memberships.Select(m => new CgMemberEntry { Name = m.Hierarchy, Path = m.Path }));
                    sets[key] = set;
                }
                process.Cores[thread.Tid].ThreadCore.CgSet = set.Id;
                if (thread.Tid == process.Pid)
                {
                    process.LeaderCore.Tc.CgSet = set.Id;
                }
            }
        }
        var entry = new CgroupEntry();
        entry.Sets.Add(sets.Values);
        foreach (var group in sets.Values.SelectMany(s => s.Ctls).GroupBy(m => m.Name))
        {
            if (!mounted.TryGetValue(group.Key, out var hierarchy))
            {
                // Not mounted here (a hierarchy only the process's mount namespace has): the membership is saved, the tree cannot be.
                session.Log.Warning($"cgroup hierarchy {(group.Key.Length == 0 ? "v2" : group.Key)} is not mounted where CriuPS runs: its cgroups are saved without their properties.");
                continue;
            }
            entry.Controllers.Add(Controller(hierarchy, group.Select(m => m.Path).Distinct(), session));
        }
        session.AddImageEntry(ImageTypes.Cgroup, null, entry);
        session.Log.Detail($"cgroups: {sets.Count} set(s) over {entry.Controllers.Count} hierarchies, {entry.Controllers.Sum(c => Count(c.Dirs))} cgroup(s) saved");
    }

    // The hierarchy with the directories on the way to each path ("/a/b" saves a, then b as its child).
    private static CgControllerEntry Controller(CgroupHierarchy hierarchy, IEnumerable<string> paths, DumpSession session)
    {
        var controller = new CgControllerEntry { IsThreaded = !hierarchy.IsV2 };
        controller.Cnames.Add(hierarchy.Controllers);
        foreach (var path in paths)
        {
            var dirs = controller.Dirs;
            string walked = "";
            foreach (var name in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                walked += "/" + name;
                var dir = dirs.FirstOrDefault(d => d.DirName == name);
                if (dir is null)
                {
                    dir = SavedDirectory(hierarchy, walked, name, session);
                    dirs.Add(dir);
                    controller.IsThreaded |= dir.Properties.Any(p => p.Name == "cgroup.type" && p.Value == "threaded");
                }
                dirs = dir.Children;
            }
        }
        return controller;
    }

    // One cgroup's directory entry with its properties, read from where this session sees the hierarchy.
    private static CgroupDirEntry SavedDirectory(CgroupHierarchy hierarchy, string path, string name, DumpSession session)
    {
        var dir = new CgroupDirEntry { DirName = name };
        if (hierarchy.DirectoryOf(path) is not { } directory || !Directory.Exists(directory))
        {
            session.Log.Warning($"cgroup {hierarchy.Shown}:{path} is not visible where CriuPS runs: saved without its properties.");
            return dir;
        }
        foreach (var property in CgroupProperties.For(hierarchy, directory))
        {
            if (CgroupProperties.Read(directory, property) is { } value)
            {
                dir.Properties.Add(new CgroupPropEntry { Name = property, Value = value });
            }
        }
        return dir;
    }

    private static int Count(IEnumerable<CgroupDirEntry> dirs) => dirs.Sum(d => 1 + Count(d.Children));
}
