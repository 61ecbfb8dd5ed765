using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// The file a unix socket bound to a path has in the filesystem: its owner and mode, whether it was removed
/// since (file_perms, deleted), the directory a relative name was bound in (name_dir). Restore binds the socket
/// again, first removing a stale socket file left at the path (never anything else, and never a socket that some
/// other socket is still bound to), then gives the file its saved owner and mode. A socket whose file was removed
/// since may find another file at its path now: as CRIU does, that file is parked beside it (PATH.criu-sk-ghost) while
/// the socket binds and its connections are made, and put back once the socket's own file is removed again.
/// </summary>
internal static class UnixSocketFile
{
    private const string DeletedSuffix = " (deleted)";

    // CRIU's name for a file moved aside while a socket binds to its path again (UNIX_GHOST_FMT).
    private const string ParkedSuffix = ".criu-sk-ghost";

    /// <summary>Records the bound file of a socket named by a path (our copy of the socket opens it with SIOCUNIXFILE).</summary>
    public static void Dump(FileDescriptor socket, UnixSkEntry entry, string describe)
    {
        if (!UnixSocketName.IsPath(entry.Name.Span))
        {
            return;
        }
        using var file = Socket.OpenBoundFile(socket);
        var status = FileStatus.Of(file);
        entry.FilePerms = new FilePermsEntry { Mode = status.Mode, Uid = status.Uid, Gid = status.Gid };
        var where = ProcFiles.ReadLink($"/proc/self/fd/{file.Value}");
        if (where.EndsWith(DeletedSuffix, StringComparison.Ordinal))
        {
            entry.Deleted = true;
            where = where[..^DeletedSuffix.Length];
        }
        var name = UnixSocketName.Path(entry.Name.Span);
        if (name.StartsWith('/'))
        {
            return;
        }
        // A relative name was resolved against the binder's working directory of the time: keep that directory.
        var relative = name;
        while (relative.StartsWith("./", StringComparison.Ordinal))
        {
            relative = relative[2..].TrimStart('/');
        }
        if (relative.Split('/').Contains("..") || !where.EndsWith("/" + relative, StringComparison.Ordinal))
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"{describe} is bound to the relative name '{name}', which CriuPS cannot place (the file is '{where}').", describe);
        }
        entry.NameDir = where[..^(relative.Length + 1)];
    }

    /// <summary>
    /// The name to reach a socket by (connect, sendto): its own, or for a relative one, the same file from the
    /// directory it was bound in.
    /// </summary>
    public static byte[] Address(UnixSkEntry entry)
    {
        if (!entry.HasNameDir || !UnixSocketName.IsPath(entry.Name.Span))
        {
            return entry.Name.ToByteArray();
        }
        var bytes = FileDescriptor.NullTerminated(FullPath(entry));
        return bytes.Length <= Socket.MaxNameLength ? bytes : throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
            $"The unix socket '{FullPath(entry)}' cannot be reached by a name of at most {Socket.MaxNameLength} bytes.", FullPath(entry));
    }

    public static string FullPath(UnixSkEntry entry)
    {
        var name = UnixSocketName.Path(entry.Name.Span);
        return entry.HasNameDir && !name.StartsWith('/') ? System.IO.Path.Combine(entry.NameDir, name) : name;
    }

    /// <summary>Binds a recreated socket to its saved name; returns the file a path name made (null for an abstract name).</summary>
    /// <param name="inUse">Whether a live socket is bound to the file at the path (the kernel's view, from sock_diag).</param>
    public static FileStatus? Bind(FileDescriptor socket, UnixSkEntry entry, Func<FileStatus, bool> inUse) =>
        TryBind(socket, entry, inUse, out var file) is { } taken
            ? throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"The {UnixSocketName.Describe(entry.Type, entry.Name.Span)} cannot be bound to its name again: {taken}.",
                UnixSocketName.Display(entry.Name.Span),
                "Move the file away, or stop the process that holds the name, then restore again.")
            : file;

    /// <summary>Like <see cref="Bind"/>, but says why the name is taken (null when bound) instead of failing on it.</summary>
    public static string? TryBind(FileDescriptor socket, UnixSkEntry entry, Func<FileStatus, bool> inUse, out FileStatus? file)
    {
        file = null;
        var name = entry.Name.Span;
        bool isPath = UnixSocketName.IsPath(name);
        if (isPath && entry.Deleted && Park(FullPath(entry)) is { } parkedTaken)
        {
            return parkedTaken;
        }
        if (isPath && Stale(FullPath(entry), inUse) is { } taken)
        {
            return taken;
        }
        int errno = entry.HasNameDir && isPath ? BindIn(entry.NameDir, socket, name) : Socket.TryBind(socket, name);
        if (errno == Errno.EADDRINUSE)
        {
            return "another socket holds the name now";
        }
        if (errno != 0)
        {
            throw new NativeException("bind", errno, UnixSocketName.Display(name));
        }
        if (isPath)
        {
            if (entry.FilePerms is { } perms)
            {
                SetOwnerAndMode(FullPath(entry), perms);
            }
            file = FileStatus.OfEntry(FullPath(entry));
        }
        return null;
    }

    /// <summary>
    /// Removes the file of a socket whose name was already removed at the checkpoint (once every connection to it is
    /// made), if the path still leads to the file its bind made.
    /// </summary>
    public static void RemoveDeleted(UnixSkEntry entry, FileStatus bound)
    {
        var path = FullPath(entry);
        if (FileStatus.OfEntry(path) is { } now && now.Inode == bound.Inode && now.Device == bound.Device)
        {
            DirectoryEntry.UnlinkIfPresent(path);
            if (FileStatus.OfEntry(path + ParkedSuffix) is not null)
            {
                File.Move(path + ParkedSuffix, path); // a file of any type: link(2) and unlink(2)
            }
        }
    }

    // Moves a file that is not a socket away from the path of a socket removed since the checkpoint (the path names
    // another file now), for the socket to bind there; says why it cannot (null when the path is free now).
    private static string? Park(string path)
    {
        if (FileStatus.OfEntry(path) is not { } status || status.Type == FileStatus.Socket)
        {
            return null; // free, or a socket file that Stale judges
        }
        if (FileStatus.OfEntry(path + ParkedSuffix) is not null)
        {
            return $"'{path}' names another file now, and '{path + ParkedSuffix}', where it would be moved aside while the socket binds, exists too";
        }
        try
        {
            File.Move(path, path + ParkedSuffix);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"'{path}' names another file now, which cannot be moved aside while the socket binds ({e.Message})";
        }
        return null;
    }

    // A socket file nobody is bound to any more is what a process that ended leaves behind, and bind(2) fails on
    // it: remove it. Anything else at the path stays, and the name is taken.
    private static string? Stale(string path, Func<FileStatus, bool> inUse)
    {
        if (FileStatus.OfEntry(path) is not { } status)
        {
            return null;
        }
        if (status.Type != FileStatus.Socket)
        {
            return $"'{path}' exists and is not a socket (CriuPS removes only stale socket files)";
        }
        if (inUse(status))
        {
            return $"another socket is bound to '{path}' now";
        }
        DirectoryEntry.UnlinkIfPresent(path);
        return null;
    }

    // bind(2) resolves a relative name against the working directory: step into the saved one just for the call.
    private static int BindIn(string directory, FileDescriptor socket, ReadOnlySpan<byte> name)
    {
        using var previous = FileDescriptor.Open(".", O.PATH | O.DIRECTORY);
        if (WorkingDirectory.TryChdir(directory) is int errno and not 0)
        {
            return errno;
        }
        try
        {
            return Socket.TryBind(socket, name);
        }
        finally
        {
            WorkingDirectory.TryFchdir(previous);
        }
    }

    private static void SetOwnerAndMode(string path, FilePermsEntry perms)
    {
        PathAttributes.Lchown(path, perms.Uid, perms.Gid);
        PathAttributes.Chmod(path, perms.Mode & 0xFFF);
    }
}
