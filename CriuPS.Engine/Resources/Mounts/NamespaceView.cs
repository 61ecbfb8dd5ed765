using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Resources.Mounts;

/// <summary>
/// Which view a saved path is in. A process of a mount namespace of its own (a container whose root was made with
/// pivot_root) names its files as its namespace shows them: "/bin/busybox" is the container's, not the host's. Such a
/// file is saved with the id of its mount in the namespace (reg_file_entry's mnt_id, as CRIU writes it) and reopened
/// at restore through the rebuilt namespace (/proc/ROOT/root/PATH, or by the process itself once inside); a file the
/// namespace does not reach (a descriptor inherited from outside its root, as runc's standard output) keeps no mnt_id
/// and is reopened at its path on the host, where it was.
/// </summary>
internal static class NamespaceView
{
    /// <summary>
    /// The id of the mount, in the namespace of <paramref name="pid"/>, that holds the file <paramref name="status"/>
    /// when <paramref name="path"/> names it in that namespace; null when the process is in the engine's mount
    /// namespace or the path, in its namespace, names another file (or none).
    /// </summary>
    public static int? MountOf(int pid, string path, FileStatus status)
    {
        if (!path.StartsWith('/') || Process.ProcessNamespaces.IsEngines(pid, "mnt") || !IsSameFile(FileStatus.OfEntry($"/proc/{pid}/root{path}"), status))
        {
            return null;
        }
        // The mount on top at the longest mount point above the path: the last such in the kernel's order.
        return Native.Proc.MountEntry.Read($"/proc/{pid}/mountinfo")
            .Where(m => IsUnder(path, m.MountPoint))
            .OrderByDescending(m => m.MountPoint.Length)
            .Select(m => (int?)m.Id)
            .FirstOrDefault();
    }

    private static bool IsSameFile(FileStatus? seen, FileStatus file) => seen is { } s && s.Device == file.Device && s.Inode == file.Inode;

    /// <summary>Whether the absolute <paramref name="path"/> is <paramref name="mountPoint"/> or below it (or below a mount's root within its filesystem).</summary>
    public static bool IsUnder(string path, string mountPoint) =>
        mountPoint == "/" || path == mountPoint || path.StartsWith(mountPoint + "/", StringComparison.Ordinal);

    /// <summary>Whether the saved file is one of the saved mount namespace's (opened through it at restore).</summary>
    public static bool IsInSavedNamespace(ImageSet images, RegFileEntry reg) =>
        reg.HasMntId && reg.MntId >= 0 && MountNamespace.Saved(images) is not null;

    /// <summary>The path the engine opens a saved file by: through the restored root's view for a file of its namespace, else its own.</summary>
    public static string PathOf(RestoreSession session, RegFileEntry reg) =>
        IsInSavedNamespace(session.Images, reg) ? $"/proc/{session.Pids.Host(session.Images.Root.Pid)}/root{reg.Name}" : reg.Name;

    /// <summary>
    /// Where the host has a file of the saved namespace before the namespace is made again, to check it: below the
    /// host path its mount is bound from; null for a file the restore makes (a tmpfs's) or that it cannot tell.
    /// </summary>
    public static string? HostPathBefore(ImageSet images, RegFileEntry reg)
    {
        if (!IsInSavedNamespace(images, reg))
        {
            return reg.Name;
        }
        var mount = MountNamespace.Saved(images)!.FirstOrDefault(m => m.MntId == (uint)reg.MntId);
        if (mount is null || !mount.HasCriupsHostPath || !IsUnder(reg.Name, mount.Mountpoint))
        {
            return null;
        }
        string below = mount.Mountpoint == "/" ? reg.Name : reg.Name[mount.Mountpoint.Length..];
        return mount.CriupsHostPath.TrimEnd('/') + below;
    }
}
