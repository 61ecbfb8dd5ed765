using CriuPS.Engine.Images.Proto;

namespace CriuPS.Engine.Resources.Mounts;

/// <summary>
/// How a mount of each filesystem type is saved. proc, sysfs, devpts, mqueue and cgroup mounts show the kernel's
/// state and are made again by type with their options; a tmpfs the host does not have is made again with its files
/// (TmpfsArchive); any filesystem the host has mounted too is bound again from where the host sees it. Overlay, FUSE
/// and network filesystems are refused: their contents live elsewhere (upper layers, a daemon, a server) and a bind
/// of them would not be the same mount.
/// </summary>
internal static class FilesystemKinds
{
    private static readonly Dictionary<string, Fstype> MadeByType = new(StringComparer.Ordinal)
    {
        ["proc"] = Fstype.Proc, ["sysfs"] = Fstype.Sysfs, ["devpts"] = Fstype.Devpts, ["mqueue"] = Fstype.Mqueue,
        ["cgroup"] = Fstype.Cgroup, ["cgroup2"] = Fstype.Cgroup2, ["tmpfs"] = Fstype.Tmpfs,
    };

    private static readonly Dictionary<string, Fstype> Known = new(StringComparer.Ordinal)
    {
        ["devtmpfs"] = Fstype.Devtmpfs, ["binfmt_misc"] = Fstype.BinfmtMisc, ["pstore"] = Fstype.Pstore,
        ["securityfs"] = Fstype.Securityfs, ["fusectl"] = Fstype.Fusectl, ["debugfs"] = Fstype.Debugfs,
        ["tracefs"] = Fstype.Tracefs, ["autofs"] = Fstype.Autofs, ["overlay"] = Fstype.Overlayfs, ["aufs"] = Fstype.Aufs,
    };

    /// <summary>CRIU's number for the type (UNSUPPORTED for the types it does not name; fsname keeps the name).</summary>
    public static Fstype Of(string fsType) =>
        MadeByType.TryGetValue(fsType, out var made) ? made
        : Known.TryGetValue(fsType, out var known) ? known
        : fsType.StartsWith("fuse", StringComparison.Ordinal) ? Fstype.Fuse
        : Fstype.Unsupported;

    /// <summary>Whether a mount of this type is made again from its type and options, not bound from the host.</summary>
    public static bool IsMadeByType(Fstype type) => MadeByType.ContainsValue(type);

    /// <summary>Why a mount of <paramref name="fsType"/> is refused, or null when it is not.</summary>
    public static string? RefusalOf(string fsType) => fsType switch
    {
        "overlay" or "aufs" => "an overlay filesystem, whose upper and work layers CriuPS does not save",
        _ when fsType.StartsWith("fuse", StringComparison.Ordinal) => "a FUSE filesystem, served by a daemon CriuPS does not save",
        _ when fsType.StartsWith("nfs", StringComparison.Ordinal) || fsType is "cifs" or "smb3" or "9p" or "ceph" =>
            "a network filesystem, whose client state CriuPS does not save",
        "autofs" => "an automount point, whose daemon CriuPS does not save",
        "binfmt_misc" => "binfmt_misc, whose handlers CriuPS does not save",
        _ => null,
    };
}
