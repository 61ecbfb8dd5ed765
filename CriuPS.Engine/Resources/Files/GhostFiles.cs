using System.Globalization;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using Microsoft.Win32.SafeHandles;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// Deleted files, directories and FIFOs a process still has open, mapped, watched or as its working or root directory
/// ("/path (deleted)"): CRIU's ghost files (a FIFO's unread bytes belong to its pipe and are saved with it). Dump: the attributes, and a file's contents (up to
/// <see cref="DumpOptions.GhostFileLimit"/> of disk space), go to ghost-file-ID.img, and remap-fpath.img ties the
/// file's entry in files.img (named by its old path) to that ghost. Restore: the engine creates the file (or the
/// directory, which was empty to be removed) again under its old name (or, when another file has that name now, beside
/// it as NAME.cr.ID.ghost, CRIU's name), writes contents, owner, mode and times, keeps an O_PATH descriptor of it and
/// unlinks (or removes) it at once: every description, mapping, watch and working directory is then opened from that
/// descriptor, so the processes find the same deleted file as before.
/// </summary>
internal static class GhostFiles
{
    private const string DeletedSuffix = " (deleted)";

    // CRIU stores a small ghost's contents whole after its head, a larger one as chunks of data (holes left out).
    private const ulong ChunksThreshold = 3 * 4096;

    // Images of CRIU before remap_type marked a ghost remap with this bit of remap_id.
    private const uint OldGhostBit = 0x80000000;

    private const int CopyBytes = 1 << 20;

    /// <summary>Ghosts saved in this dump, by device and inode.</summary>
    private sealed class SavedGhosts
    {
        public Dictionary<(ulong Device, ulong Inode), uint> Ids { get; } = new();
    }

    /// <summary>Ghosts created for this restore (O_PATH descriptors of the unlinked files), by ghost id.</summary>
    private sealed class CreatedGhosts : IDisposable
    {
        public Dictionary<uint, FileDescriptor> ById { get; } = new();

        /// <summary>Descriptions the processes map deleted files through, by ghost and open flags.</summary>
        public Dictionary<(uint GhostId, int Flags), FileDescriptor> ForMappings { get; } = new();

        public void Dispose()
        {
            foreach (var file in ById.Values.Concat(ForMappings.Values))
            {
                file.Dispose();
            }
        }
    }

    /// <summary>Whether a /proc link names a file that was unlinked.</summary>
    public static bool IsDeleted(string link) => link.EndsWith(DeletedSuffix, StringComparison.Ordinal);

    /// <summary>The path a file had, without the kernel's " (deleted)".</summary>
    public static string PathOf(string link) => IsDeleted(link) ? link[..^DeletedSuffix.Length] : link;

    /// <summary>Why a deleted file (what: "fd 4: open file", "mapping 0x...") cannot be saved, or null.</summary>
    public static string? Problem(string what, string link, FileStatus status, DumpOptions options)
    {
        if (status.Type is not (FileStatus.Regular or FileStatus.Directory or FileStatus.Fifo))
        {
            return $"{what} '{link}' was deleted, and only deleted regular files, directories and FIFOs can be saved";
        }
        var directory = Path.GetDirectoryName(PathOf(link));
        if (status.Type == FileStatus.Regular && directory is not null && IsOnHugetlbfs(directory))
        {
            // A ghost file comes back by writing its contents into a new file, and hugetlbfs has no write.
            return $"{what} '{link}' was deleted from a hugetlbfs mount, where a ghost file cannot be made again";
        }
        if (status.Type == FileStatus.Regular && status.AllocatedBytes > (ulong)options.GhostFileLimit)
        {
            return $"{what} '{link}' was deleted and takes {status.AllocatedBytes} bytes on disk, more than the ghost file limit of {options.GhostFileLimit} bytes (-GhostFileLimit)";
        }
        // It is created again in its directory: that must still be there, on the file's own file system (which also
        // keeps out files of the kernel's internal mounts, such as /secretmem).
        if (directory is null || !SameFileSystem(directory, status))
        {
            return $"{what} '{link}' was deleted, and its directory is gone or on another file system";
        }
        return null;
    }

    private static bool IsOnHugetlbfs(string directory)
    {
        try
        {
            return Statfs.FileSystemType(directory) == Statfs.HugetlbfsMagic;
        }
        catch (NativeException)
        {
            return false; // gone: refused below
        }
    }

    private static bool SameFileSystem(string directory, FileStatus file)
    {
        try
        {
            var status = FileStatus.Of(directory);
            return status.Type == FileStatus.Directory && status.Device == file.Device;
        }
        catch (NativeException)
        {
            return false;
        }
    }

    /// <summary>Saves the deleted file that <paramref name="readablePath"/> opens (once per file) and ties file entry <paramref name="fileId"/> to it.</summary>
    public static void Dump(DumpSession session, uint fileId, string readablePath, string link)
    {
        // Non-blocking: opening a FIFO to read would otherwise wait for a writer.
        using var file = FileDescriptor.Open(readablePath, O.RDONLY | O.NONBLOCK);
        var status = FileStatus.Of(file);
        // Checked again: the file may have grown since the pre-flight check.
        var problem = Problem("the file", link, status, session.Options);
        if (problem is not null)
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported, $"{char.ToUpperInvariant(problem[0])}{problem[1..]}.", link);
        }
        var saved = session.State<SavedGhosts>();
        if (!saved.Ids.TryGetValue((status.Device, status.Inode), out var ghostId))
        {
            ghostId = (uint)saved.Ids.Count + 1;
            saved.Ids[(status.Device, status.Inode)] = ghostId;
            Write(session, ghostId, file, status);
            session.Log.Detail($"deleted file '{link}': {status.Size} bytes saved as ghost-file-{ghostId:x}.img");
        }
        session.AddImageEntry(ImageTypes.RemapFpath, null, new RemapFilePathEntry { OrigId = fileId, RemapId = ghostId, RemapType = RemapType.Ghost });
    }

    private static void Write(DumpSession session, uint ghostId, FileDescriptor file, FileStatus status)
    {
        var head = new GhostFileEntry
        {
            Uid = status.Uid,
            Gid = status.Gid,
            Mode = status.Mode,
            // As CRIU: the kernel's encoding of the device number (major << 20 | minor).
            Dev = (status.DeviceMajor << 20) | status.DeviceMinor,
            Ino = status.Inode,
            Atim = Timeval(status.AccessTimeNs),
            Mtim = Timeval(status.ModifyTimeNs),
        };
        // A directory had to be empty to be removed, and a FIFO's bytes are its pipe's: they have attributes only.
        bool contents = status.Type == FileStatus.Regular;
        bool chunks = contents && status.Size >= ChunksThreshold;
        if (chunks)
        {
            head.Chunks = true;
            head.Size = status.Size;
        }
        using var image = session.CreateImage(ImageTypes.GhostFile, ghostId.ToString("x", CultureInfo.InvariantCulture));
        image.WriteEntry(head);
        var handle = new SafeFileHandle(file.Value, ownsHandle: false);
        if (!chunks)
        {
            if (contents)
            {
                Copy(handle, image, 0, status.Size);
            }
            return;
        }
        for (ulong? data = Lseek.NextData(file, 0); data is { } start && start < status.Size;)
        {
            ulong end = Math.Min(Lseek.NextHole(file, start), status.Size);
            image.WriteEntry(new GhostChunkEntry { Off = start, Len = end - start });
            Copy(handle, image, start, end - start);
            data = end >= status.Size ? null : Lseek.NextData(file, end);
        }
    }

    private static void Copy(SafeFileHandle file, ImageWriter image, ulong offset, ulong length)
    {
        var buffer = new byte[(int)Math.Min(CopyBytes, Math.Max(length, 1))];
        for (ulong done = 0; done < length;)
        {
            int n = RandomAccess.Read(file, buffer.AsSpan(0, (int)Math.Min((ulong)buffer.Length, length - done)), (long)(offset + done));
            if (n <= 0)
            {
                throw new IOException($"the deleted file ended at {offset + done} bytes while being saved (it was {offset + length})");
            }
            image.WriteRaw(buffer.AsSpan(0, n));
            done += (ulong)n;
        }
    }

    private static Timeval Timeval(long ns) => new() { TvSec = (ulong)(ns / 1_000_000_000), TvUsec = (ulong)(ns % 1_000_000_000 / 1000) };

    /// <summary>The ghost file saved for file entry <paramref name="fileId"/>, or null when the file is reached by its path.</summary>
    public static uint? GhostOf(ImageSet images, uint fileId)
    {
        foreach (var remap in images.Entries(ImageTypes.RemapFpath).Select(e => (RemapFilePathEntry)e.Message).Where(r => r.OrigId == fileId))
        {
            if (remap.HasRemapType ? remap.RemapType == RemapType.Ghost : (remap.RemapId & OldGhostBit) != 0)
            {
                return remap.RemapId & ~OldGhostBit;
            }
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"The file '{images.File(fileId).Reg?.Name}' was saved as a {(remap.HasRemapType ? remap.RemapType : RemapType.Linked)} remap (remap-fpath.img), which CriuPS cannot restore yet.",
                images.Directory);
        }
        return null;
    }

    /// <summary>
    /// The ghost saved for the file with inode <paramref name="inode"/> on device <paramref name="device"/> (the
    /// kernel's encoding), with the file entry it was saved for, or null: how CRIU finds the deleted file a watch is on.
    /// </summary>
    public static (RegFileEntry File, uint GhostId)? OfInode(ImageSet images, uint device, ulong inode)
    {
        foreach (var remap in images.Entries(ImageTypes.RemapFpath).Select(e => (RemapFilePathEntry)e.Message))
        {
            if (GhostOf(images, remap.OrigId) is uint ghostId
                && images.Entries(ImageTypes.GhostFile, ghostId.ToString("x", CultureInfo.InvariantCulture)) is [{ Message: GhostFileEntry head }, ..]
                && head.Dev == device && head.Ino == inode)
            {
                return (images.File(remap.OrigId).Reg, ghostId);
            }
        }
        return null;
    }

    /// <summary>A new description of the deleted file, created again on first use, with these open flags.</summary>
    /// <remarks>
    /// O_NOFOLLOW, which the process's open kept in the description's flags (glibc's shm_open passes it), is left out:
    /// it did its work when the path was opened, and our path is a /proc link, which it would refuse (ELOOP).
    /// </remarks>
    public static FileDescriptor Open(RestoreSession session, RegFileEntry reg, uint ghostId, int flags) =>
        FileDescriptor.Open($"/proc/self/fd/{Created(session, reg, ghostId).Value}", flags & ~O.NOFOLLOW);

    /// <summary>A path through which a restored process opens the deleted file itself (our descriptor's /proc link).</summary>
    public static string PathInEngine(RestoreSession session, RegFileEntry reg, uint ghostId) =>
        $"/proc/{session.EnginePid}/fd/{Created(session, reg, ghostId).Value}";

    // Our O_PATH descriptor of the deleted file, created again on first use.
    private static FileDescriptor Created(RestoreSession session, RegFileEntry reg, uint ghostId)
    {
        var created = session.State<CreatedGhosts>();
        if (!created.ById.TryGetValue(ghostId, out var ghost))
        {
            ghost = Recreate(session, reg, ghostId);
            created.ById[ghostId] = ghost;
        }
        return ghost;
    }

    /// <summary>Our description of the deleted file, open with <paramref name="flags"/>, that a process maps it through.</summary>
    public static FileDescriptor ForMapping(RestoreSession session, RegFileEntry reg, uint ghostId, int flags)
    {
        var created = session.State<CreatedGhosts>();
        if (!created.ForMappings.TryGetValue((ghostId, flags), out var description))
        {
            description = Open(session, reg, ghostId, flags);
            created.ForMappings[(ghostId, flags)] = description;
        }
        return description;
    }

    private static FileDescriptor Recreate(RestoreSession session, RegFileEntry reg, uint ghostId)
    {
        var imageName = ImageTypes.GhostFile.FileName(ghostId.ToString("x", CultureInfo.InvariantCulture));
        var entries = session.Images.Entries(ImageTypes.GhostFile, ghostId.ToString("x", CultureInfo.InvariantCulture));
        if (entries.Count == 0 || entries[0].Message is not GhostFileEntry head)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                $"{imageName} is missing or empty: the contents of the deleted file '{reg.Name}' are not in the image.", session.Images.Directory);
        }
        uint type = head.Mode & FileStatus.TypeMask;
        if (type is not (FileStatus.Regular or FileStatus.Directory or FileStatus.Fifo))
        {
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"{imageName}: the deleted file '{reg.Name}' is neither a regular file, a directory nor a FIFO (mode {Convert.ToString(head.Mode, 8)}), which CriuPS cannot create again yet.", session.Images.Directory);
        }
        bool directory = type == FileStatus.Directory;
        string path = reg.Name;
        var file = Create(path, type, head.Mode & 0xFFF, out int errno);
        if (file is null && errno == Errno.EEXIST)
        {
            path = $"{reg.Name}.cr.{ghostId:x}.ghost";
            file = Create(path, type, head.Mode & 0xFFF, out errno);
        }
        if (file is null)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"The deleted {(directory ? "directory" : type == FileStatus.Fifo ? "FIFO" : "file")} '{reg.Name}' that the process had open cannot be created again as '{path}': {Errno.Describe(errno)}.",
                reg.Name, "Its directory must exist and be writable on this machine.");
        }
        try
        {
            using (file)
            {
                if (type == FileStatus.Regular)
                {
                    WriteContents(file, head, entries, imageName);
                }
                Inode.Fchown(file, head.Uid, head.Gid);
                Inode.Fchmod(file, head.Mode & 0xFFF);
                if (head.Atim is not null && head.Mtim is not null)
                {
                    Inode.Futimens(file, Nanoseconds(head.Atim), Nanoseconds(head.Mtim));
                }
            }
            return FileDescriptor.Open(path, O.PATH | O.NOFOLLOW);
        }
        finally
        {
            if (directory)
            {
                DirectoryEntry.RemoveDirectory(path);
            }
            else
            {
                DirectoryEntry.Unlink(path);
            }
        }
    }

    // A new file (open for writing), directory or FIFO (open for its attributes) of this type at path; null and the
    // errno when it cannot be made.
    private static FileDescriptor? Create(string path, uint type, uint mode, out int errno)
    {
        if (type == FileStatus.Regular)
        {
            return FileDescriptor.TryOpen(path, O.WRONLY | O.CREAT | O.EXCL | O.NOFOLLOW, out errno, mode);
        }
        if (type == FileStatus.Fifo)
        {
            errno = DirectoryEntry.Mkfifo(path, mode);
            // Read-write: the one way to open a FIFO that never waits for its other end.
            var fifo = errno == 0 ? FileDescriptor.TryOpen(path, O.RDWR | O.NOFOLLOW, out errno) : null;
            if (fifo is null && errno != Errno.EEXIST)
            {
                DirectoryEntry.Unlink(path);
            }
            return fifo;
        }
        errno = DirectoryEntry.Mkdir(path, mode);
        if (errno != 0)
        {
            return null;
        }
        var created = FileDescriptor.TryOpen(path, O.RDONLY | O.DIRECTORY | O.NOFOLLOW, out errno);
        if (created is null)
        {
            DirectoryEntry.RemoveDirectory(path);
        }
        return created;
    }

    private static void WriteContents(FileDescriptor file, GhostFileEntry head, IReadOnlyList<ImageEntry> entries, string imageName)
    {
        var handle = new SafeFileHandle(file.Value, ownsHandle: false);
        if (!head.Chunks)
        {
            RandomAccess.Write(handle, entries[0].Payload ?? Array.Empty<byte>(), 0);
            return;
        }
        if (!head.HasSize)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"{imageName}: a ghost file in chunks without a size.", imageName);
        }
        Inode.Ftruncate(file, head.Size);
        foreach (var entry in entries.Skip(1))
        {
            var chunk = (GhostChunkEntry)entry.Message;
            RandomAccess.Write(handle, entry.Payload ?? Array.Empty<byte>(), (long)chunk.Off);
        }
    }

    private static long Nanoseconds(Timeval time) => (long)time.TvSec * 1_000_000_000 + (long)time.TvUsec * 1000;
}
