using System.Globalization;
using System.Text;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Engine.Restore.Checks;

namespace CriuPS.Engine.Resources.Cgroups;

/// <summary>
/// At restore: every process and thread back into its saved cgroups in every hierarchy, before it runs. A process
/// joins through cgroup.procs (all its threads with it), then each thread whose set differs through tasks (v1) or
/// cgroup.threads (a threaded v2 subtree). A missing cgroup is made with its saved properties, the special ones first;
/// an existing one is joined as it is (or, with <see cref="CgroupMode.Full"/>, given the saved properties too). What
/// cannot be placed (a hierarchy not mounted here, a v2 controller not enabled) is refused before anything is created;
/// the cgroups made for a restore that fails are removed (<see cref="RemoveCreated"/>).
/// </summary>
internal sealed class CgroupRestore
{
    private Dictionary<uint, CgSetEntry> sets = new();
    private Dictionary<string, CgControllerEntry> controllers = new(StringComparer.Ordinal);
    private Dictionary<string, CgroupHierarchy> mounted = new(StringComparer.Ordinal);
    private readonly List<string> created = new();
    private bool active;

    /// <summary>Reads and checks cgroup.img and refuses what cannot be placed here; before anything is created.</summary>
    public static void Check(RestoreSession session)
    {
        var images = session.Images;
        var entries = images.Entries(ImageTypes.Cgroup);
        string file = Path.Combine(images.Directory, ImageTypes.Cgroup.FileName(null));
        if (entries.Count == 0)
        {
            session.Log.Detail("no cgroup.img: the processes stay in this session's cgroups");
            return;
        }
        if (entries.Count > 1)
        {
            throw ImageDamage.In(file, $"it holds {entries.Count} entries; a checkpoint writes one.");
        }
        var entry = (CgroupEntry)entries[0].Message;
        var state = session.State<CgroupRestore>();
        state.sets = CgroupChecks.Check(images.Directory, entry, images.Processes);
        foreach (var controller in entry.Controllers)
        {
            state.controllers.TryAdd(string.Join(',', controller.Cnames), controller);
        }
        if (session.Options.CgroupMode == CgroupMode.Ignore)
        {
            session.Log.Write("-CgroupMode Ignore: the processes stay in this session's cgroups");
            return;
        }
        state.mounted = CgroupHierarchy.Mounted();
        foreach (var process in images.Processes)
        {
            foreach (var (tid, core) in process.Cores)
            {
                foreach (var member in state.SetOf(core)?.Ctls ?? [])
                {
                    var hierarchy = state.mounted.GetValueOrDefault(member.Name);
                    string? directory = hierarchy?.DirectoryOf(member.Path);
                    if (directory is null)
                    {
                        throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                            $"Thread {tid} of process {process.Pid} sat in cgroup {Shown(member.Name)}:{member.Path}, and "
                            + (hierarchy is null ? $"no cgroup hierarchy {Shown(member.Name)} is mounted here." : $"the hierarchy mounted at {hierarchy.MountPoint} shows only {hierarchy.MountRoot}."),
                            images.Directory,
                            "Mount that hierarchy (mount -t cgroup -o CONTROLLERS cgroup DIR), or restore with -CgroupMode Ignore to leave the processes in this session's cgroups.");
                    }
                    state.CheckControllers(hierarchy!, member.Path, images.Directory);
                }
            }
        }
        state.active = true;
    }

    /// <summary>Puts every process and thread into its saved cgroups; once every thread exists, before any runs.</summary>
    public static void Place(RestoreSession session, IReadOnlyList<RestoringProcess> processes)
    {
        var state = session.State<CgroupRestore>();
        if (!state.active)
        {
            return;
        }
        foreach (var process in processes)
        {
            var set = state.SetOf(process.Images.LeaderCore);
            // Where the process is now, read once for all its hierarchies (a read per hierarchy was ten per process).
            var now = CgroupMembership.Of(process.HostPid, process.HostPid);
            foreach (var member in set?.Ctls ?? [])
            {
                var (hierarchy, directory) = state.Ensure(member, session);
                if (Current(now, member.Name) != member.Path)
                {
                    Join(directory, "cgroup.procs", process.HostPid, $"process {process.Pid}");
                }
            }
            foreach (var thread in process.Threads.Skip(1).Where(t => state.SetOf(t.Core) is { } own && own != set))
            {
                var threadNow = CgroupMembership.Of(process.HostPid, thread.Tracee.Tid);
                foreach (var member in state.SetOf(thread.Core)!.Ctls.Where(m => Current(threadNow, m.Name) != m.Path))
                {
                    var (hierarchy, directory) = state.Ensure(member, session);
                    Join(directory, hierarchy.IsV2 ? "cgroup.threads" : "tasks", thread.Tracee.Tid, $"thread {thread.Tracee.Tid} of process {process.Pid}");
                }
            }
            session.Log.Detail($"process {process.Pid}: in {string.Join(", ", set?.Ctls.Select(m => $"{Shown(m.Name)}:{m.Path}") ?? [])}");
        }
    }

    /// <summary>
    /// Makes every missing cgroup of the saved processes now, before they join them: a container's mount namespace
    /// binds its own cgroup directories (runc's /sys/fs/cgroup/CONTROLLER), which must exist when it is made again.
    /// </summary>
    public static void MakeMissing(RestoreSession session)
    {
        var state = session.State<CgroupRestore>();
        if (!state.active)
        {
            return;
        }
        foreach (var member in state.Members(session.Images))
        {
            state.Ensure(member, session);
        }
    }

    /// <summary>Whether <paramref name="directory"/> is a cgroup the restore puts a saved process or thread in (made by <see cref="MakeMissing"/> if missing).</summary>
    public static bool WillMake(RestoreSession session, string directory)
    {
        var state = session.State<CgroupRestore>();
        return state.active && state.Members(session.Images)
            .Any(m => state.mounted.GetValueOrDefault(m.Name)?.DirectoryOf(m.Path) is { } d && Path.TrimEndingDirectorySeparator(d) == Path.TrimEndingDirectorySeparator(directory));
    }

    private IEnumerable<CgMemberEntry> Members(ImageSet images) =>
        images.Processes.SelectMany(p => p.Cores.Select(c => c.Core)).SelectMany(core => SetOf(core)?.Ctls ?? []).DistinctBy(m => (m.Name, m.Path));

    /// <summary>Removes the cgroups made for a restore that failed, once its processes are gone; deepest first.</summary>
    public static void RemoveCreated(RestoreSession session)
    {
        var state = session.State<CgroupRestore>();
        foreach (var directory in Enumerable.Reverse(state.created))
        {
            // A task just reaped may hold its cgroup for a moment. cgroup v2 tells when the cgroup is empty; v1
            // notifies nothing (only a release agent hears of it), so there a refused removal is tried again.
            if (CgroupEvents.Has(directory))
            {
                CgroupEvents.WaitFor(directory, "populated 0", TimeSpan.FromSeconds(1));
            }
            for (int attempt = 0; ; attempt++)
            {
                try
                {
                    Directory.Delete(directory);
                    session.Log.Detail($"removed the cgroup {directory} made for this restore");
                    break;
                }
                catch (IOException) when (attempt < 50 && Directory.Exists(directory))
                {
                    Thread.Sleep(20);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    session.Log.Error($"could not remove the cgroup {directory} made for this restore: {e.Message}");
                    break;
                }
            }
        }
        state.created.Clear();
    }

    /// <summary>Where the process <paramref name="pid"/> sits now, as "hierarchy:path" (v2 named "v2").</summary>
    public static IReadOnlyList<string> Where(int pid) => CgroupMembership.Of(pid).Select(m => $"{Shown(m.Hierarchy)}:{m.Path}").ToList();

    private CgSetEntry? SetOf(CoreEntry core)
    {
        uint id = core.ThreadCore?.HasCgSet == true ? core.ThreadCore.CgSet : core.Tc?.HasCgSet == true ? core.Tc.CgSet : 0;
        return id == 0 ? null : sets[id];
    }

    // A v2 cgroup to be made needs the controllers of its saved properties enabled where it goes.
    private void CheckControllers(CgroupHierarchy hierarchy, string path, string imageDirectory)
    {
        if (!hierarchy.IsV2)
        {
            return;
        }
        var available = (CgroupProperties.Read(hierarchy.MountPoint, "cgroup.controllers") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        foreach (var (walked, saved) in Steps(hierarchy, path).Where(s => !Directory.Exists(hierarchy.DirectoryOf(s.Walked))))
        {
            foreach (var property in saved?.Properties ?? [])
            {
                string controller = property.Name[..Math.Max(0, property.Name.IndexOf('.'))];
                if (controller != "cgroup" && !available.Contains(controller))
                {
                    throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                        $"The cgroup v2:{walked} must be made again with its {property.Name} ({property.Value}), and the {controller} controller is not available in the v2 hierarchy here (cgroup.controllers: '{string.Join(' ', available)}').",
                        imageDirectory, "Give the controller to cgroup v2 (it is bound to a v1 hierarchy here), or restore with -CgroupMode Ignore.");
                }
            }
        }
    }

    // The directory of a member, made (with every missing directory on the way) when missing.
    private (CgroupHierarchy Hierarchy, string Directory) Ensure(CgMemberEntry member, RestoreSession session)
    {
        var hierarchy = mounted[member.Name];
        foreach (var (walked, saved) in Steps(hierarchy, member.Path))
        {
            string directory = hierarchy.DirectoryOf(walked)!;
            if (!Directory.Exists(directory))
            {
                Directory.CreateDirectory(directory);
                created.Add(directory);
                Apply(directory, saved, session);
                session.Log.Detail($"made cgroup {hierarchy.Shown}:{walked} with {saved?.Properties.Count ?? 0} saved propertie(s)");
            }
            else if (session.Options.CgroupMode == CgroupMode.Full)
            {
                Apply(directory, saved, session);
            }
        }
        return (hierarchy, hierarchy.DirectoryOf(member.Path)!);
    }

    // Each directory on the way to path ("/a/b": "/a", "/a/b") with its saved entry, if the image has it.
    private IEnumerable<(string Walked, CgroupDirEntry? Saved)> Steps(CgroupHierarchy hierarchy, string path)
    {
        IEnumerable<CgroupDirEntry> level = controllers.TryGetValue(hierarchy.Name, out var controller) ? controller.Dirs : [];
        var steps = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        string walked = "";
        int i = 0;
        while (i < steps.Length)
        {
            // A saved directory may name several steps at once ("a/b", as CRIU may write it).
            var saved = level.FirstOrDefault(d => d.DirName.Split('/', StringSplitOptions.RemoveEmptyEntries) is var names
                && names.Length <= steps.Length - i && names.SequenceEqual(steps[i..(i + names.Length)]));
            int taken = saved?.DirName.Split('/', StringSplitOptions.RemoveEmptyEntries).Length ?? 1;
            for (int t = 0; t < taken; t++)
            {
                walked += "/" + steps[i + t];
                yield return (walked, t == taken - 1 ? saved : null);
            }
            i += taken;
            level = saved?.Children ?? [];
        }
    }

    private static void Apply(string directory, CgroupDirEntry? saved, RestoreSession session)
    {
        foreach (var property in saved?.Properties.OrderBy(p => CgroupProperties.IsSpecial(p.Name) ? 0 : 1) ?? Enumerable.Empty<CgroupPropEntry>())
        {
            string file = Path.Combine(directory, property.Name);
            if (!File.Exists(file))
            {
                session.Log.Warning($"cgroup {directory} has no {property.Name} here: its saved value '{property.Value}' is not restored.");
                continue;
            }
            var current = CgroupProperties.Read(directory, property.Name);
            if (current == property.Value || (property.Name == "cgroup.type" && property.Value != "threaded"))
            {
                continue;
            }
            try
            {
                switch (property.Name)
                {
                    case "cgroup.subtree_control":
                        foreach (var controller in property.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                        {
                            Write(file, "+" + controller);
                        }
                        break;
                    case "devices.list":
                        // Only the list of what is allowed can be read: deny all, then allow each line.
                        Write(Path.Combine(directory, "devices.deny"), "a");
                        foreach (var line in property.Value.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                        {
                            Write(Path.Combine(directory, "devices.allow"), line);
                        }
                        break;
                    default:
                        Write(file, property.Value);
                        break;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CheckpointException(CheckpointErrorKind.RestoreFailed,
                    $"Could not give the cgroup {directory} its saved {property.Name} ('{property.Value}'): {e.Message}.", file,
                    "Restore with -CgroupMode Ignore, or make the cgroup yourself with values this machine accepts, then restore (existing cgroups are joined as they are).");
            }
        }
    }

    private static void Join(string directory, string file, int id, string who)
    {
        try
        {
            Write(Path.Combine(directory, file), id.ToString(CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"Could not put {who} into the cgroup {directory} ({file}): {e.Message}.", directory,
                "Restore with -CgroupMode Ignore to leave the processes in this session's cgroups.");
        }
    }

    // One write(2) per value, as the cgroup files expect; no truncation, no buffering.
    private static void Write(string file, string value)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        stream.Write(Encoding.UTF8.GetBytes(value));
    }

    private static string? Current(List<(string Hierarchy, string Path)> membership, string hierarchy) =>
        membership.FirstOrDefault(m => m.Hierarchy == hierarchy).Path;

    private static string Shown(string hierarchy) => hierarchy.Length == 0 ? "v2" : hierarchy;
}
