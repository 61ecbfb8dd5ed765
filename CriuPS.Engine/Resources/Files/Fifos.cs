using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// FIFOs opened by path (named pipes): a fifo_entry, a reg_file_entry with the path, open flags and owner (as CRIU
/// writes it), and the FIFO's unread bytes once in fifo-data.img. Restore: the engine first opens the FIFO read-write,
/// which never blocks, so that opening it again (through /proc/self/fd) read-only or write-only with the saved flags
/// finds its other end, as CRIU does; the unread bytes go back in through that first descriptor, once per FIFO. A FIFO node missing at
/// restore is created again with its saved mode: the node itself holds nothing (the bytes are in the image), and
/// peers outside the tree can only find the restored process by that path. A FIFO removed while open is saved as a ghost
/// file (<see cref="GhostFiles"/>) of its reg_file_entry, as CRIU does: made again, opened and removed at restore.
/// </summary>
internal sealed class Fifos : FileKind
{
    // Flags that would change the file if we passed them again on reopen.
    private const int CreationFlags = O.CREAT | O.EXCL | O.TRUNC | O.TMPFILE;

    /// <summary>FIFOs whose unread bytes are saved (dump) or written back (restore), by pipe id.</summary>
    private sealed class HandledFifos
    {
        public HashSet<uint> PipeIds { get; } = new();
    }

    public override FdTypes Type => FdTypes.Fifo;

    public override bool Handles(DescriptorProbe probe) => probe.Status.Type == FileStatus.Fifo && !probe.Link.StartsWith("pipe:", StringComparison.Ordinal);

    public override string? Problem(DescriptorProbe probe, DumpOptions options) =>
        GhostFiles.IsDeleted(probe.Link) ? GhostFiles.Problem($"fd {probe.Fd}: named FIFO", probe.Link, probe.Status, options) : null;

    // Flags and owner are on the FIFO's reg_file_entry.
    public override SavedDescription Saved(ImageSet images, FileEntry file)
    {
        var reg = RegOf(images, file);
        return new(reg.Flags, reg.Fown);
    }

    private static RegFileEntry RegOf(ImageSet images, FileEntry file) => images.File(file.Fifo.HasRegfId ? file.Fifo.RegfId : file.Fifo.Id).Reg;

    public override FileEntry Dump(DescriptorDump dump)
    {
        var session = dump.Session;
        uint pipeId = (uint)dump.Probe.Status.Inode;
        uint regId = session.Files.NewId();
        session.Files.Add(RegularFiles.Entry(regId, GhostFiles.PathOf(dump.Probe.Link), (int)dump.Flags, 0, dump.Probe.Status, dump.Owner));
        if (GhostFiles.IsDeleted(dump.Probe.Link))
        {
            GhostFiles.Dump(session, regId, $"/proc/self/fd/{dump.Copy.Value}", dump.Probe.Link);
        }
        if (session.State<HandledFifos>().PipeIds.Add(pipeId))
        {
            var (data, size) = Pipes.ReadUnread(dump.Probe.Pid, dump.Probe.Fd);
            session.AddImageEntry(ImageTypes.FifoData, null, new PipeDataEntry { PipeId = pipeId, Bytes = (uint)data.Length, Size = (uint)size }, data);
            if (data.Length > 0)
            {
                session.Log.Detail($"FIFO '{dump.Probe.Link}' holds {data.Length} unread bytes");
            }
        }
        return new FileEntry
        {
            Type = FdTypes.Fifo,
            Id = dump.Id,
            Fifo = new FifoEntry { Id = dump.Id, PipeId = pipeId, RegfId = regId },
        };
    }

    public override FileDescriptor Open(RestoreSession session, FileEntry file)
    {
        var fifo = file.Fifo;
        var reg = RegOf(session.Images, file);
        var ghost = GhostFiles.GhostOf(session.Images, file.Fifo.HasRegfId ? file.Fifo.RegfId : file.Fifo.Id);
        bool created = ghost is null && CreateNodeIfMissing(session, reg);
        using var bothEnds = ghost is null ? FileDescriptor.Open(reg.Name, O.RDWR) : GhostFiles.Open(session, reg, ghost.Value, O.RDWR);
        if (created)
        {
            Inode.Fchmod(bothEnds, reg.Mode & 0xFFF); // the mode mkfifo gave went through our umask
        }
        if (session.State<HandledFifos>().PipeIds.Add(fifo.PipeId))
        {
            var saved = session.Images.Entries(ImageTypes.FifoData).FirstOrDefault(e => ((PipeDataEntry)e.Message).PipeId == fifo.PipeId);
            if (saved is not null)
            {
                Pipes.Refill(bothEnds, (PipeDataEntry)saved.Message, saved.Payload ?? Array.Empty<byte>());
            }
        }
        return FileDescriptor.Open($"/proc/self/fd/{bothEnds.Value}", ((int)reg.Flags & ~CreationFlags) | O.NOCTTY);
    }

    // Whether the FIFO node had to be created again.
    private static bool CreateNodeIfMissing(RestoreSession session, RegFileEntry reg)
    {
        int errno = DirectoryEntry.Mkfifo(reg.Name, reg.Mode & 0xFFF);
        if (errno == 0)
        {
            session.Log.Warning($"The FIFO '{reg.Name}' was missing; it was created again with mode {Convert.ToString(reg.Mode & 0xFFF, 8)}.");
            return true;
        }
        if (errno != Errno.EEXIST)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"The FIFO '{reg.Name}' that the process had open is missing and cannot be created again: {Errno.Describe(errno)}.",
                reg.Name, "Make its directory available at the same path.");
        }
        if (FileStatus.Of(reg.Name).Type != FileStatus.Fifo)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"'{reg.Name}' is no longer a FIFO; the process had it open as one.", reg.Name, "Remove what is at that path, or put the FIFO back.");
        }
        return false;
    }
}
