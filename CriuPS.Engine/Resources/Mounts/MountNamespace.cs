using System.Globalization;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Files;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Mounts;

/// <summary>
/// A mount namespace of the tree's own (unshare -m): its mount tree, read from the root's mountinfo, in
/// mountpoints-ID.img as CRIU writes it (one MntEntry per mount, parents first), with the files of each tmpfs only the
/// namespace has in tmpfs-dev-N.tar.gz. A filesystem the host has mounted too (a bind of a host directory, the host's
/// root, a host tmpfs) is recorded as a bind of the path where the host sees it (criups_host_path); proc, sysfs,
/// devpts, mqueue and cgroup mounts are made again by type; any other is external (ext_key: its mount point), bound at
/// restore from what the user names (-ExternalMount). As CRIU, one such namespace, the root's, for the whole tree.
/// </summary>
internal static partial class MountNamespace
{
    /// <summary>What keeps the mount namespace of the root <paramref name="pid"/> from being saved (a refused filesystem), or what its processes hold that CriuPS would reopen at another path.</summary>
    public static IEnumerable<string> Problems(int pid)
    {
        foreach (var mount in Mounts(pid))
        {
            if (FilesystemKinds.RefusalOf(mount.FsType) is { } why)
            {
                yield return $"its mount namespace has {mount.FsType} mounted at {mount.MountPoint}: {why}";
            }
        }
    }

    /// <summary>
    /// What the process <paramref name="pid"/> (of a mount namespace not the engine's) has open, mapped or entered at a
    /// path that names the file neither in its namespace nor, for what the engine reopens (descriptors, its program),
    /// on the host: such a file could not be found again at restore. Its mappings, working and root directories are
    /// entered again by the process itself inside its restored namespace, so their paths must name them there.
    /// </summary>
    public static IEnumerable<string> ViewProblems(int pid)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var paths = new List<(string What, string Actual, string Path, bool HostWill)>();
        foreach (var fd in ProcFiles.FileDescriptors(pid))
        {
            paths.Add(($"its descriptor {fd}", $"/proc/{pid}/fd/{fd}", Link($"/proc/{pid}/fd/{fd}"), true));
        }
        paths.Add(("its working directory", $"/proc/{pid}/cwd", Link($"/proc/{pid}/cwd"), false));
        paths.Add(("its root directory", $"/proc/{pid}/root", Link($"/proc/{pid}/root"), false));
        paths.Add(("its program", $"/proc/{pid}/exe", Link($"/proc/{pid}/exe"), true));
        foreach (var vma in SmapsParser.ReadMaps(pid).Where(v => v.Path.StartsWith('/') && !v.IsDeleted))
        {
            paths.Add(($"its mapping of {vma.Path}", Memory.MapFiles.PathOf(pid, vma), vma.Path, false));
        }
        foreach (var (what, actual, path, hostWill) in paths)
        {
            if (!path.StartsWith('/') || GhostFiles.IsDeleted(path) || !seen.Add(actual) || Follow(actual) is not { } file)
            {
                continue; // a pipe, a socket, an anonymous inode, a deleted file (saved by content)
            }
            if (!Same(Follow($"/proc/{pid}/root{path}"), file) && !(hostWill && Same(Follow(path), file)))
            {
                yield return $"{what} is '{path}', which names another file in its mount namespace"
                    + (hostWill ? " and on the host" : "") + " (a file reached through a directory descriptor from outside its root, or a mount stacked over it since): CriuPS could not find it again at restore";
            }
        }
    }

    private static bool Same(FileStatus? seen, FileStatus file) => seen is { } s && s.Device == file.Device && s.Inode == file.Inode;

    /// <summary>At dump, for the root: a mount namespace of its own is saved; returns without writing when it is the engine's.</summary>
    public static void Dump(DumpSession session, DumpedProcess root)
    {
        if (Process.ProcessNamespaces.IsEngines(root.Pid, "mnt"))
        {
            return;
        }
        var mounts = Mounts(root.Pid);
        var host = MountEntry.Read("/proc/self/mountinfo");
        using var writer = session.CreateImage(ImageTypes.Mountpoints, root.Ids.MntNsId.ToString(CultureInfo.InvariantCulture));
        // A tmpfs's files are saved once, through the mount that shows most of it (the shortest root, the first in
        // tree order among equals): the others (runc's /dev/null bound over /proc/kcore) are binds of that one.
        var whole = mounts.GroupBy(m => (m.Major, m.Minor)).ToDictionary(g => g.Key, g => g.OrderBy(m => m.Root.Length).First());
        foreach (var mount in mounts)
        {
            var entry = Entry(mount, host);
            if (entry.Fstype == (uint)Fstype.Proc && ProcPidNamespace(root.Pid, mount) is { } pidNs)
            {
                entry.CriupsPidNsId = session.ObjectIds.For(pidNs);
            }
            writer.WriteEntry(entry);
            if (entry.Fstype == (uint)Fstype.Tmpfs && !entry.HasCriupsHostPath && whole[(mount.Major, mount.Minor)] == mount)
            {
                // One archive per filesystem, as CRIU: a tmpfs mounted twice in the namespace is the same files.
                using var archive = session.Output.Create(ImageTypes.TmpfsDev.FileName(entry.RootDev.ToString(CultureInfo.InvariantCulture)));
                var through = $"/proc/{root.Pid}/root{mount.MountPoint}";
                TmpfsArchive.Save(through, FileStatus.Of(through).Device, archive);
            }
            var from = whole[(mount.Major, mount.Minor)];
            string how = from != mount && FilesystemKinds.IsMadeByType((Fstype)entry.Fstype) && !entry.HasCriupsHostPath
                ? $"bound from mount {from.Id} at {from.MountPoint}" : How(entry);
            session.Log.Detail($"mount {mount.Id} at {mount.MountPoint}: {mount.FsType} {mount.Source} {mount.Root} ({how})");
        }
    }

    // The PID namespace a proc mount shows: its PID 1's, read through the root's view ("pid:[4026532170]").
    private static string? ProcPidNamespace(int root, MountEntry mount)
    {
        var link = Link($"/proc/{root}/root{mount.MountPoint}/1/ns/pid");
        return link.Length > 0 ? link : null;
    }

    private static string How(MntEntry entry) =>
        entry.HasCriupsHostPath ? $"bound from the host's {entry.CriupsHostPath}"
        : entry.ExtMount ? "external: -ExternalMount names it at restore"
        : entry.Fstype == (uint)Fstype.Tmpfs ? "made again with its files" : "made again by type";

    private static MntEntry Entry(MountEntry mount, List<MountEntry> host)
    {
        var type = FilesystemKinds.Of(mount.FsType);
        var entry = new MntEntry
        {
            Fstype = (uint)type,
            MntId = (uint)mount.Id,
            RootDev = (mount.Major << 20) | mount.Minor, // the kernel's kdev_t, as CRIU's MKKDEV
            ParentMntId = (uint)mount.ParentId,
            Flags = (uint)MountFlags.Of(mount.Options),
            SbFlags = (uint)MountFlags.OfSuperblock(mount.SuperOptions),
            Root = mount.Root,
            Mountpoint = mount.MountPoint,
            Source = mount.Source,
            Options = MountFlags.Data(mount.SuperOptions),
            SharedId = (uint)mount.SharedId,
            MasterId = (uint)mount.MasterId,
            Fsname = mount.FsType,
        };
        // proc is one superblock per mount and PID namespace: never the host's, always made again.
        if (type != Fstype.Proc && HostPath(mount, host) is { } path)
        {
            entry.CriupsHostPath = path;
        }
        else if (!FilesystemKinds.IsMadeByType(type))
        {
            entry.ExtMount = true;
            entry.ExtKey = mount.MountPoint;
        }
        return entry;
    }

    /// <summary>
    /// Where the host sees what <paramref name="mount"/> shows: a host mount of the same filesystem whose root holds
    /// the mount's root, and the path below it; null when the host has the filesystem nowhere.
    /// </summary>
    private static string? HostPath(MountEntry mount, List<MountEntry> host)
    {
        var best = host
            .Where(h => h.Major == mount.Major && h.Minor == mount.Minor && NamespaceView.IsUnder(mount.Root, h.Root))
            .OrderByDescending(h => h.Root.Length)
            .FirstOrDefault();
        if (best is null)
        {
            return null;
        }
        string below = mount.Root == best.Root ? "" : mount.Root[(best.Root == "/" ? 0 : best.Root.Length)..];
        string path = best.MountPoint == "/" ? (below.Length == 0 ? "/" : below) : best.MountPoint + below;
        return path;
    }

    /// <summary>The mounts of the namespace the process sees, from its root mount down, parents before children.</summary>
    public static List<MountEntry> Mounts(int pid) => InTreeOrder(MountEntry.Read($"/proc/{pid}/mountinfo"));

    private static List<MountEntry> InTreeOrder(List<MountEntry> mounts)
    {
        var ids = mounts.Select(m => m.Id).ToHashSet();
        var ordered = new List<MountEntry>();
        var byParent = mounts.ToLookup(m => m.ParentId);
        // The root: the mount at / whose parent the process does not see.
        foreach (var root in mounts.Where(m => m.MountPoint == "/" && !ids.Contains(m.ParentId)).Take(1))
        {
            var pending = new Stack<MountEntry>();
            pending.Push(root);
            while (pending.Count > 0)
            {
                var mount = pending.Pop();
                ordered.Add(mount);
                foreach (var child in byParent[mount.Id].Where(c => c.Id != mount.Id).Reverse())
                {
                    pending.Push(child);
                }
            }
        }
        return ordered;
    }

    private static string Link(string path)
    {
        try
        {
            return ProcFiles.ReadLink(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NativeException)
        {
            return "";
        }
    }

    private static FileStatus? Follow(string path)
    {
        try
        {
            return FileStatus.Of(path);
        }
        catch (NativeException)
        {
            return null;
        }
    }
}
