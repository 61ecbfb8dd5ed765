using System.Globalization;
using System.Runtime.CompilerServices;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Process;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Mounts;

/// <summary>
/// At restore, a saved mount namespace is made again in the root, by injected system calls, as CRIU does: the root
/// unshares a mount namespace (a copy of the restorer's, made private at once so that nothing reaches the host),
/// builds the saved tree under a staging directory, parents first (binds of host paths and of -ExternalMount paths,
/// mounts made by type with their options, each tmpfs filled from its archive through the root's view), then enters
/// it with pivot_root and lets the restorer's tree go. The other processes join the namespace. A restore that fails
/// leaves nothing: the namespace dies with its processes, and the staging directory is removed.
/// </summary>
internal static partial class MountNamespace
{
    // Read and checked once per image set: every file of the images asks whether it is of the namespace.
    private static readonly ConditionalWeakTable<ImageSet, StrongBox<IReadOnlyList<MntEntry>?>> Read = new();

    /// <summary>The saved mounts of the image's root, parents first, or null when the root lived in the dumping engine's mount namespace.</summary>
    public static IReadOnlyList<MntEntry>? Saved(ImageSet images) => Read.GetValue(images, i => new(ReadSaved(i))).Value;

    private static IReadOnlyList<MntEntry>? ReadSaved(ImageSet images)
    {
        var rootIds = images.Inventory.RootIds;
        uint ns = images.Root.Ids.MntNsId;
        if (rootIds is null || !rootIds.HasMntNsId || rootIds.MntNsId == ns)
        {
            return null;
        }
        string id = ns.ToString(CultureInfo.InvariantCulture);
        var file = Path.Combine(images.Directory, ImageTypes.Mountpoints.FileName(id));
        var mounts = images.Entries(ImageTypes.Mountpoints, id).Select(e => (MntEntry)e.Message).ToList();
        Check(mounts, file, ns);
        return mounts;
    }

    // Every damaged value is ImageCorrupt naming the file, before anything is mounted.
    private static void Check(List<MntEntry> mounts, string file, uint ns)
    {
        CheckpointException Corrupt(string what) => new(CheckpointErrorKind.ImageCorrupt, $"{file}: {what}", file);
        if (mounts.Count == 0 || mounts[0].Mountpoint != "/")
        {
            throw Corrupt($"the root's mount namespace ({ns}) is not the dumping tool's, and this image should hold its mounts, the first at /; it holds {mounts.Count}{(mounts.Count > 0 ? $", the first at '{mounts[0].Mountpoint}'" : "")}.");
        }
        var made = new HashSet<uint> { mounts[0].MntId };
        foreach (var mount in mounts.Skip(1))
        {
            if (!made.Contains(mount.ParentMntId))
            {
                throw Corrupt($"mount {mount.MntId} at '{mount.Mountpoint}' has parent {mount.ParentMntId}, which is not a mount listed before it.");
            }
            if (!made.Add(mount.MntId))
            {
                throw Corrupt($"mount id {mount.MntId} is listed twice.");
            }
        }
        foreach (var mount in mounts)
        {
            if (!mount.Mountpoint.StartsWith('/') || mount.Mountpoint.Split('/').Any(p => p is "." or "..") || mount.Mountpoint.Contains('\0'))
            {
                throw Corrupt($"mount {mount.MntId}'s mount point '{mount.Mountpoint}' is not an absolute path without . or .. parts.");
            }
            bool byType = FilesystemKinds.IsMadeByType((Fstype)mount.Fstype) && Enum.IsDefined((Fstype)mount.Fstype);
            if (!mount.HasCriupsHostPath && !mount.ExtMount && !byType)
            {
                throw Corrupt($"mount {mount.MntId} at '{mount.Mountpoint}' is of filesystem type {mount.Fstype}, which is neither bound from a path nor made by type.");
            }
            if (mount.HasCriupsHostPath && !mount.CriupsHostPath.StartsWith('/'))
            {
                throw Corrupt($"mount {mount.MntId} at '{mount.Mountpoint}' is bound from '{mount.CriupsHostPath}', which is not an absolute path.");
            }
            if ((mount.Flags & ~MountFlags.PerMount) != 0 || (mount.SbFlags & ~MountFlags.ReadOnly) != 0)
            {
                throw Corrupt($"mount {mount.MntId} at '{mount.Mountpoint}' has flags 0x{mount.Flags:x} / superblock flags 0x{mount.SbFlags:x} that a mount's options do not give.");
            }
            if (BoundFrom(mounts, mount) is { } from && !NamespaceView.IsUnder(mount.Root, from.Root))
            {
                throw Corrupt($"mount {mount.MntId} at '{mount.Mountpoint}' shows '{mount.Root}' of the filesystem that mount {from.MntId} at '{from.Mountpoint}' shows from '{from.Root}': no saved mount holds it.");
            }
        }
        if (InBuildOrder(mounts).Count != mounts.Count)
        {
            throw Corrupt("its mounts cannot be made in any order: a bind of a mount of the namespace is needed before that mount can be made.");
        }
    }

    /// <summary>
    /// The mount of the namespace that <paramref name="mount"/> is a bind of: a mount of the same filesystem (root_dev)
    /// made again by type that shows more of it (the shortest root, the first listed among equals); null for one made
    /// by type itself or bound from a path. runc's read-only /proc/sys, its /dev/null bound over /proc/kcore are such
    /// binds; as CRIU, they are bound from that mount once it is made.
    /// </summary>
    private static MntEntry? BoundFrom(IReadOnlyList<MntEntry> mounts, MntEntry mount)
    {
        if (mount.HasCriupsHostPath || mount.ExtMount)
        {
            return null;
        }
        var whole = mounts.Where(m => !m.HasCriupsHostPath && !m.ExtMount && m.RootDev == mount.RootDev).OrderBy(m => m.Root.Length).First();
        return whole == mount ? null : whole;
    }

    // The saved mounts in an order they can be made: each after its parent and after the mount it is a bind of.
    private static List<MntEntry> InBuildOrder(IReadOnlyList<MntEntry> mounts)
    {
        var made = new HashSet<uint>();
        var order = new List<MntEntry>();
        var pending = mounts.ToList();
        var binds = mounts.ToDictionary(m => m.MntId, m => BoundFrom(mounts, m)); // ids are unique: Check saw to it
        while (pending.FirstOrDefault(m => (order.Count == 0 ? m == mounts[0] : made.Contains(m.ParentMntId))
            && (binds[m.MntId] is not { } from || made.Contains(from.MntId))) is { } ready)
        {
            order.Add(ready);
            made.Add(ready.MntId);
            pending.Remove(ready);
        }
        return order;
    }

    // Where a bind of a mount of the namespace is bound from: that mount in the staging tree, and the path below its root.
    private static string InStaging(string staging, MntEntry from, MntEntry mount) =>
        (from.Mountpoint == "/" ? staging : staging + from.Mountpoint) + (from.Root == "/" ? mount.Root == "/" ? "" : mount.Root : mount.Root[from.Root.Length..]);

    /// <summary>What this session lacks to make the namespace: unshare(CLONE_NEWNS), mount and pivot_root need CAP_SYS_ADMIN.</summary>
    public static IEnumerable<Obstacle> Obstacles(ImageSet images, SessionPrivileges privileges)
    {
        if (Saved(images) is { } saved && !privileges.Has(Capability.SysAdmin))
        {
            yield return new($"it lived in a mount namespace of its own ({saved.Count} mounts), and making one needs CAP_SYS_ADMIN", Capability.SysAdmin);
        }
    }

    /// <summary>
    /// Refuses, before anything is created, an external mount the user did not name (-ExternalMount, keyed by its
    /// key or mount point), and a host path that is gone.
    /// </summary>
    public static void CheckCanRestore(RestoreSession session)
    {
        if (Saved(session.Images) is not { } saved)
        {
            return;
        }
        foreach (var mount in saved)
        {
            var source = SourcePath(session, mount);
            if (mount.ExtMount && source is null)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                    $"Process {session.Images.Root.Pid} of '{session.Options.ImagePath}' had {mount.Fsname} {mount.Source} mounted at {mount.Mountpoint} in its mount namespace, which the host did not have and CriuPS does not save.",
                    session.Options.ImagePath, $"Name what to bind there: -ExternalMount @{{ '{mount.ExtKey}' = '/host/path' }}.");
            }
            // A cgroup directory bound into the namespace (runc's) may be one the restore makes first.
            if (source is not null && FileStatus.OfEntry(source) is null && !Cgroups.CgroupRestore.WillMake(session, source))
            {
                throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                    $"The mount at {mount.Mountpoint} of the mount namespace of process {session.Images.Root.Pid} is bound from '{source}', which does not exist here.",
                    source, mount.ExtMount ? "Name an existing path in -ExternalMount." : "Restore where the same paths exist, or create it.");
            }
        }
    }

    // Where a bind mount's files come from: the user's path for an external one, else the host's path saved.
    private static string? SourcePath(RestoreSession session, MntEntry mount)
    {
        if (mount.ExtMount)
        {
            var external = session.Options.ExternalMounts;
            return external is null ? null
                : external.TryGetValue(mount.ExtKey, out var byKey) ? byKey
                : external.TryGetValue(mount.Mountpoint, out var byPoint) ? byPoint : null;
        }
        return mount.HasCriupsHostPath ? mount.CriupsHostPath : null;
    }

    // Who mounts a proc: a process of the tree in the PID namespace it showed, else the root (a namespace none of the
    // tree's is the restorer's, or the root's own).
    private static RestoringProcess Mounter(IReadOnlyList<RestoringProcess> processes, MntEntry mount) =>
        mount.HasCriupsPidNsId ? processes.FirstOrDefault(p => p.Images.Ids.PidNsId == mount.CriupsPidNsId) ?? processes[0] : processes[0];

    // Empty once the root has left it; after a failure, what is still mounted on it in the root's namespace goes with it.
    private static void RemoveStaging(RestoreSession session, string staging)
    {
        try
        {
            Directory.Delete(staging);
        }
        catch (IOException e)
        {
            session.Log.Error($"the staging directory {staging} of the mount namespace could not be removed: {e.Message}");
        }
    }

    /// <summary>
    /// Once the processes exist in their PID, IPC and network namespaces (a proc, mqueue or sysfs mount shows its
    /// mounter's), before their memory and files: the root makes the namespace, the others join it. The files of the
    /// namespace are then opened through it (<see cref="NamespaceView"/>), mappings by the processes inside it.
    /// Entering the namespace moved their working and root directories to its root: they are entered again.
    /// </summary>
    public static void Restore(RestoreSession session, IReadOnlyList<RestoringProcess> processes)
    {
        if (Saved(session.Images) is not { } saved)
        {
            return;
        }
        var root = processes[0];
        // Made by the engine, where the root's copy of the restorer's tree sees it too; never mounted on in the host's namespace.
        var staging = Directory.CreateTempSubdirectory("criups-mntns-").FullName;
        try
        {
            var builder = new MountTreeBuilder(root, staging, session.Images.Directory);
            builder.Begin();
            // Every process joins before the mounts are made: a proc mount is made by a process of its PID namespace.
            foreach (var process in processes.Skip(1))
            {
                ProcessNamespaces.Join(process.Injection, $"/proc/{root.HostPid}/ns/mnt", LibC.CLONE_NEWNS, $"the mount namespace of {root.Pid}");
            }
            foreach (var mount in InBuildOrder(saved))
            {
                var source = BoundFrom(saved, mount) is { } from ? InStaging(staging, from, mount) : SourcePath(session, mount);
                builder.Make(mount, source, Mounter(processes, mount));
            }
            // pivot_root moves every process of the namespace whose root and working directory were the old root.
            builder.Enter();
        }
        finally
        {
            RemoveStaging(session, staging);
        }
        foreach (var process in processes.DistinctBy(p => p.Images.Ids.FsId))
        {
            Credentials.FsState.Restore(session, process);
        }
        session.Log.Detail($"mount namespace made again: {saved.Count} mounts, {processes.Count} process(es) in it");
    }
}
