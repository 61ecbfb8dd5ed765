using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// Regular files, directories and device nodes reached by path (reg_file_entry): recorded with their open
/// flags, position and size on dump, reopened by the engine on restore. A symbolic link is a file of its own only
/// when opened with O_PATH | O_NOFOLLOW: both flags are saved with the others, so the reopen gets the link again (the
/// /proc/self link too, which reads as the pid of whichever process reads it).
/// </summary>
internal sealed class RegularFiles : FileKind
{
    public override FdTypes Type => FdTypes.Reg;

    public override bool Handles(DescriptorProbe probe) =>
        probe.Status.Type is FileStatus.Regular or FileStatus.Directory or FileStatus.BlockDevice
            ? !probe.Link.StartsWith("anon_inode:", StringComparison.Ordinal) && !probe.Link.StartsWith("/memfd:", StringComparison.Ordinal)
            : probe.Status.Type == FileStatus.Symlink || (probe.Status.Type == FileStatus.CharDevice && !TerminalDevice.IsTerminal(probe.Status));

    public override string? Problem(DescriptorProbe probe, DumpOptions options)
    {
        if (GhostFiles.IsDeleted(probe.Link))
        {
            return GhostFiles.Problem($"fd {probe.Fd}: open file", probe.Link, probe.Status, options);
        }
        // Files under /proc/PID of the tree are opened once its processes exist again; its threads come later.
        return ProcFileOfTree.ThreadOf(probe.Link) is int thread && thread != probe.Pid && Directory.Exists($"/proc/{probe.Pid}/task/{thread}")
            ? $"fd {probe.Fd}: '{probe.Link}' of its own thread {thread} (a thread's files under /proc cannot be opened again before the thread exists)"
            : null;
    }

    public override FileEntry Dump(DescriptorDump dump)
    {
        var link = dump.Probe.Link;
        var entry = Entry(dump.Id, GhostFiles.PathOf(link), (int)dump.Flags, dump.Info.Position, dump.Probe.Status, dump.Owner);
        if (GhostFiles.IsDeleted(link))
        {
            // Our copy may be write-only: the contents are read through a new read-only description.
            GhostFiles.Dump(dump.Session, dump.Id, $"/proc/self/fd/{dump.Copy.Value}", link);
        }
        else
        {
            InNamespaceOf(entry, dump.Probe.Pid, dump.Probe.Status);
        }
        return entry;
    }

    public override FileDescriptor Open(RestoreSession session, FileEntry file)
    {
        var ghost = GhostFiles.GhostOf(session.Images, file.Id);
        if (ghost is null)
        {
            return Open(file.Reg, session.Log, Mounts.NamespaceView.PathOf(session, file.Reg));
        }
        var fd = GhostFiles.Open(session, file.Reg, ghost.Value, (int)file.Reg.Flags & ~CreationFlags);
        Lseek.Set(fd, file.Reg.Pos);
        return fd;
    }

    public override SavedDescription Saved(ImageSet images, FileEntry file) => new(file.Reg.Flags, file.Reg.Fown);

    // Flags that would change the file if we passed them again on reopen.
    private const int CreationFlags = O.CREAT | O.EXCL | O.TRUNC | O.TMPFILE;

    /// <summary>
    /// The file behind a memory mapping (shared by every area mapping it with the same flags); a deleted one is saved
    /// as a ghost file.
    /// </summary>
    public static uint ForMapping(DumpSession session, int pid, VmaInfo vma, int openFlags)
    {
        var mapFile = MapFiles.PathOf(pid, vma);
        var status = FileStatus.Of(mapFile);
        return session.Files.Path(vma.Path, openFlags, id =>
        {
            if (GhostFiles.IsDeleted(vma.Path))
            {
                GhostFiles.Dump(session, id, mapFile, vma.Path);
                return Entry(id, GhostFiles.PathOf(vma.Path), openFlags, 0, status, FileOwner.None);
            }
            return InNamespaceOf(Entry(id, vma.Path, openFlags, 0, status, FileOwner.None), pid, status);
        });
    }

    /// <summary>A file reached through a /proc link of the process (exe, cwd, root); a deleted one is saved as a ghost file.</summary>
    public static uint ForLink(DumpSession session, string linkPath, int openFlags)
    {
        var path = ProcFiles.ReadLink(linkPath);
        var status = FileStatus.Of(linkPath);
        return session.Files.Path(path, openFlags, id =>
        {
            if (GhostFiles.IsDeleted(path))
            {
                GhostFiles.Dump(session, id, linkPath, path);
                return Entry(id, GhostFiles.PathOf(path), openFlags, 0, status, FileOwner.None);
            }
            return ProcFileOfTree.PidOf(linkPath) is int pid ? InNamespaceOf(Entry(id, path, openFlags, 0, status, FileOwner.None), pid, status)
                : Entry(id, path, openFlags, 0, status, FileOwner.None);
        });
    }

    // A file of the process's own mount namespace keeps its mount's id there: it is reopened through that namespace.
    private static FileEntry InNamespaceOf(FileEntry entry, int pid, FileStatus status)
    {
        if (Mounts.NamespaceView.MountOf(pid, entry.Reg.Name, status) is int mount)
        {
            entry.Reg.MntId = mount;
        }
        return entry;
    }

    /// <summary>
    /// A reg_file_entry: the path, open flags and position of a file, with its size and mode at dump time. No mnt_id:
    /// CRIU writes one only when it saves the mount namespace, and its restore looks a file's mount up among the saved
    /// ones when there is one (none are saved here: a ghost file is then not linked back, "No such file or directory").
    /// </summary>
    public static FileEntry Entry(uint id, string path, int flags, ulong position, FileStatus status, FownEntry owner)
    {
        var reg = new RegFileEntry
        {
            Id = id,
            Flags = (uint)flags,
            Pos = position,
            Fown = owner,
            Name = path,
            Size = status.Size,
            Mode = status.Mode,
        };
        return new FileEntry { Type = FdTypes.Reg, Id = id, Reg = reg };
    }

    /// <summary>Reopens a saved file description in the engine, at its saved position.</summary>
    public static FileDescriptor Open(RegFileEntry reg, EngineLog log, string path)
    {
        int flags = (int)reg.Flags & ~CreationFlags;
        var fd = FileDescriptor.TryOpen(path, flags | O.NOCTTY, out int errno);
        if (fd is null && errno == Errno.EACCES)
        {
            int access = (flags & O.ACCMODE) switch { O.WRONLY => Faccessat.Write, O.RDWR => Faccessat.Read | Faccessat.Write, _ => Faccessat.Read };
            throw PathAccess.Denied(reg.Name, "the file that the process had open", access);
        }
        if (fd is null)
        {
            throw new CheckpointException(
                CheckpointErrorKind.ImageIncompatible,
                $"The file '{reg.Name}' that the process had open cannot be opened: {Errno.Describe(errno)}.",
                reg.Name,
                "Make the file available at the same path (restore on a machine with the same files).");
        }
        var status = FileStatus.Of(fd);
        // A log open for appending grows between checkpoint and restore; a file shorter than the saved position
        // or one of another size that is not appended to has been changed under the process.
        bool appending = (reg.Flags & O.APPEND) != 0;
        if (reg.HasSize && status.Type == FileStatus.Regular && (status.Size < reg.Pos || (!appending && status.Size != reg.Size)))
        {
            log.Warning($"'{reg.Name}' is {status.Size} bytes now, {reg.Size} at the checkpoint (position {reg.Pos}).");
        }
        if (reg.Pos != 0 && status.Type is FileStatus.Regular or FileStatus.Directory or FileStatus.BlockDevice)
        {
            try
            {
                Lseek.Set(fd, reg.Pos);
            }
            catch (NativeException e)
            {
                fd.Dispose();
                throw new NativeException("lseek", e.Errno, reg.Name);
            }
        }
        return fd;
    }

    /// <summary>Checks that a file mapped into memory is still the one that was mapped (same size), or says what changed.</summary>
    public static void CheckMappedFile(RegFileEntry reg, string path)
    {
        FileStatus status;
        try
        {
            status = FileStatus.Of(path);
        }
        catch (NativeException e) when (e.Errno == Errno.EACCES)
        {
            throw PathAccess.Denied(reg.Name, "the file that the process had mapped into memory", inner: e);
        }
        catch (NativeException e)
        {
            throw new CheckpointException(
                CheckpointErrorKind.ImageIncompatible,
                $"The file '{reg.Name}' that the process had mapped into memory is missing: {Errno.Describe(e.Errno)}.",
                reg.Name,
                "Restore on a machine with the same files at the same paths.");
        }
        if (reg.HasSize && status.Size != reg.Size)
        {
            throw new CheckpointException(
                CheckpointErrorKind.ImageIncompatible,
                $"The file '{reg.Name}' that the process had mapped into memory has changed: {status.Size} bytes now, {reg.Size} at the checkpoint.",
                reg.Name,
                "Restore with the same version of the file (binaries and libraries must not change between checkpoint and restore).");
        }
    }
}
