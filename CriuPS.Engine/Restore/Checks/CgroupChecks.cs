using System.Globalization;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;

namespace CriuPS.Engine.Restore.Checks;

/// <summary>
/// cgroup.img as a checkpoint writes it, before any cgroup is made or joined: set ids used once, every cgroup path
/// absolute and inside its hierarchy (no "." or ".." step: a damaged path must not make or join a cgroup elsewhere),
/// directory and property names single file names, and every set a core names present.
/// </summary>
internal static class CgroupChecks
{
    public static Dictionary<uint, CgSetEntry> Check(string directory, CgroupEntry entry, IEnumerable<ProcessImages> processes)
    {
        string path = Path.Combine(directory, ImageTypes.Cgroup.FileName(null));
        var sets = ImageDamage.UniqueBy(entry.Sets, s => s.Id, path, "id", i => $"sets[{i}]");
        for (int s = 0; s < entry.Sets.Count; s++)
        {
            for (int m = 0; m < entry.Sets[s].Ctls.Count; m++)
            {
                var member = entry.Sets[s].Ctls[m];
                if (!member.Path.StartsWith('/') || member.Path.Split('/').Any(step => step is "." or ".." || step.Contains('\0')))
                {
                    throw ImageDamage.In(path, $"sets[{s}].ctls[{m}]: the cgroup path '{member.Path}' is not an absolute path inside its hierarchy.");
                }
            }
        }
        for (int c = 0; c < entry.Controllers.Count; c++)
        {
            CheckDirectories(path, $"controllers[{c}].dirs", entry.Controllers[c].Dirs);
        }
        foreach (var process in processes)
        {
            foreach (var (tid, core) in process.Cores)
            {
                foreach (uint set in new[] { core.Tc?.HasCgSet == true ? core.Tc.CgSet : 0, core.ThreadCore?.HasCgSet == true ? core.ThreadCore.CgSet : 0 })
                {
                    if (set != 0 && !sets.ContainsKey(set))
                    {
                        string core_ = Path.Combine(directory, ImageTypes.Core.FileName(tid.ToString(CultureInfo.InvariantCulture)));
                        throw ImageDamage.In(core_, $"cg_set {set} is no set of {ImageTypes.Cgroup.FileName(null)}.");
                    }
                }
            }
        }
        return sets;
    }

    private static void CheckDirectories(string path, string where, IEnumerable<CgroupDirEntry> dirs)
    {
        int d = 0;
        foreach (var dir in dirs)
        {
            string here = $"{where}[{d++}]";
            // One name, or (as CRIU may write it) a path of several below the parent, never leaving it.
            if (dir.DirName.Split('/', StringSplitOptions.RemoveEmptyEntries) is not { Length: > 0 } steps || !steps.All(IsFileName))
            {
                throw ImageDamage.In(path, $"{here}: '{dir.DirName}' is not the name of a directory below its parent.");
            }
            foreach (var property in dir.Properties.Where(p => !IsFileName(p.Name)))
            {
                throw ImageDamage.In(path, $"{here}: '{property.Name}' is not the name of a cgroup file.");
            }
            CheckDirectories(path, $"{here}.children", dir.Children);
        }
    }

    private static bool IsFileName(string name) => name.Length > 0 && name is not ("." or "..") && !name.Contains('/') && !name.Contains('\0');
}
