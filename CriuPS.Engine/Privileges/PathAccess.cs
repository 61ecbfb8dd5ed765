using CriuPS.Engine.Errors;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Privileges;

/// <summary>
/// Where this session's access to a path stops: a directory on the way it may not search, or the file itself, and
/// the PermissionDenied error that names it with its owner and mode (a missing file and an unreadable one look
/// alike to File.Exists).
/// </summary>
public static class PathAccess
{
    /// <summary>
    /// The first path that denies this session on the way to <paramref name="path"/>: a directory it may not search,
    /// or the path itself when it exists and may not be used as <paramref name="mode"/> asks (<see cref="Faccessat"/>
    /// bits); null when nothing does.
    /// </summary>
    public static string? Blocker(string path, int mode = Faccessat.Read)
    {
        var full = Path.GetFullPath(path);
        var ancestors = new List<string>();
        for (var dir = Path.GetDirectoryName(full); dir is not null; dir = Path.GetDirectoryName(dir))
        {
            ancestors.Add(dir);
        }
        ancestors.Reverse();
        foreach (var dir in ancestors)
        {
            int errno = Faccessat.Check(dir, Faccessat.Search);
            if (errno is Errno.EACCES or Errno.EPERM)
            {
                return dir;
            }
            if (errno != 0)
            {
                return null; // missing, or not a directory: no question of permission
            }
        }
        return Faccessat.Check(full, mode) is Errno.EACCES or Errno.EPERM ? full : null;
    }

    /// <summary>A PermissionDenied error when a permission stands between this session and <paramref name="path"/>, else null.</summary>
    public static CheckpointException? Denial(string path, string what, int mode = Faccessat.Read, Exception? inner = null) =>
        Blocker(path, mode) is { } blocker ? Denied(path, blocker, what, mode, inner) : null;

    /// <summary>Throws PermissionDenied when a permission stands between this session and <paramref name="path"/>.</summary>
    public static void Demand(string path, string what, int mode = Faccessat.Read)
    {
        if (Denial(path, what, mode) is { } denied)
        {
            throw denied;
        }
    }

    /// <summary>PermissionDenied for <paramref name="path"/>, naming what blocks it (itself or a directory on the way).</summary>
    public static CheckpointException Denied(string path, string what, int mode = Faccessat.Read, Exception? inner = null) =>
        Denied(path, Blocker(path, mode) ?? Path.GetFullPath(path), what, mode, inner);

    private static CheckpointException Denied(string path, string blocker, string what, int mode, Exception? inner)
    {
        var full = Path.GetFullPath(path);
        string owner = FileStatus.OfEntry(blocker) is { } status
            ? $" (owner {SessionPrivileges.DescribeUser(status.Uid)}, mode {Convert.ToString(status.Mode & 0xFFF, 8).PadLeft(4, '0')})"
            : "";
        string session = $"this session ({SessionPrivileges.DescribeUser(SessionPrivileges.Current().EffectiveUid)})";
        string message = blocker == full
            ? $"Permission denied: {what} '{full}'{owner} may not be {((mode & Faccessat.Write) != 0 ? "written" : "read")} by {session}."
            : $"Permission denied: {what} '{full}' is inside '{blocker}'{owner}, which {session} may not search.";
        return new CheckpointException(CheckpointErrorKind.PermissionDenied, message, full,
            "Run as the owner or as root, or have the owner grant access (chmod, chown); checkpoints are written for their owner only (directories 0700, files 0600).",
            inner);
    }
}
