using CriuPS.Engine.Dump;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// Anonymous pipes (pipe_entry, pipes-data.img). Dump: the unread bytes are copied with tee(2) from a reader of
/// the pipe, which leaves them in place. Restore: the engine creates the pipe, refills it, and hands each end to
/// the process.
/// </summary>
internal sealed class Pipes : FileKind
{
    public override FdTypes Type => FdTypes.Pipe;

    public override bool Handles(DescriptorProbe probe) => probe.Status.Type == FileStatus.Fifo && probe.Link.StartsWith("pipe:", StringComparison.Ordinal);

    public override SavedDescription Saved(ImageSet images, FileEntry file) => new(file.Pipe.Flags, file.Pipe.Fown);

    public override FileEntry Dump(DescriptorDump dump)
    {
        var session = dump.Session;
        var status = dump.Probe.Status;
        int pid = dump.Probe.Pid;
        int fd = dump.Probe.Fd;
        var entry = new FileEntry
        {
            Type = FdTypes.Pipe,
            Id = dump.Id,
            Pipe = new PipeEntry { Id = dump.Id, PipeId = (uint)status.Inode, Flags = dump.Flags, Fown = dump.Owner },
        };
        if (!session.PipeData.Any(d => d.Entry.PipeId == (uint)status.Inode))
        {
            var (data, size) = ReadUnread(pid, fd);
            session.PipeData.Add((new PipeDataEntry { PipeId = (uint)status.Inode, Bytes = (uint)data.Length, Size = (uint)size }, data));
            if (data.Length > 0)
            {
                session.Log.Detail($"pipe:[{status.Inode}] of {pid} holds {data.Length} unread bytes");
            }
        }
        return entry;
    }

    /// <summary>
    /// The unread bytes of a pipe or FIFO and its capacity. Opening /proc/PID/fd/N with O_RDONLY gives a new reader of
    /// the same pipe, whichever end N is.
    /// </summary>
    public static (byte[] Data, int Size) ReadUnread(int pid, int fd)
    {
        using var reader = FileDescriptor.Open($"/proc/{pid}/fd/{fd}", O.RDONLY | O.NONBLOCK);
        int size = Fcntl.Call(reader, Fcntl.F_GETPIPE_SZ);
        var copy = FileDescriptor.Pipe(O.CLOEXEC | O.NONBLOCK);
        using var copyRead = copy.Read;
        using var copyWrite = copy.Write;
        Fcntl.Call(copyWrite, Fcntl.F_SETPIPE_SZ, size);
        long copied = Tee.TryCopy(reader, copyWrite, size);
        if (copied == -Errno.EAGAIN)
        {
            return (Array.Empty<byte>(), size);
        }
        if (copied < 0)
        {
            throw new NativeException("tee", (int)-copied, $"pipe fd {fd} of {pid}");
        }
        var data = new byte[copied];
        for (long done = 0; done < copied;)
        {
            long n = copyRead.TryRead(data.AsSpan((int)done));
            if (n <= 0)
            {
                throw new NativeException("read of copied pipe data", n < 0 ? (int)-n : Errno.EIO);
            }
            done += n;
        }
        return (data, size);
    }

    /// <summary>
    /// A description of the saved pipe's end that <paramref name="file"/> describes, creating the pipe on first use. The
    /// first read-only and the first write-only description get the ends pipe2 made; any other (an end opened again
    /// through /proc/PID/fd, read-write ones) is opened anew through an end, as it was made: each has flags of its own.
    /// </summary>
    public override FileDescriptor Open(RestoreSession session, FileEntry file)
    {
        var entry = file.Pipe;
        if (!session.Pipes.TryGetValue(entry.PipeId, out var pipe))
        {
            pipe = Create(session, entry.PipeId);
            session.Pipes[entry.PipeId] = pipe;
        }
        int access = (int)entry.Flags & O.ACCMODE;
        var end = access == O.RDONLY ? pipe.Read : pipe.Write;
        if (access != O.RDWR && session.State<HandedOutEnds>().Ends.Add(end))
        {
            return end;
        }
        // Both ends are still ours: opening one again never waits for a partner.
        return FileDescriptor.Open($"/proc/self/fd/{end.Value}", access);
    }

    /// <summary>The ends pipe2 made that a saved description already got.</summary>
    private sealed class HandedOutEnds
    {
        public HashSet<FileDescriptor> Ends { get; } = new(ReferenceEqualityComparer.Instance);
    }

    private static (FileDescriptor Read, FileDescriptor Write) Create(RestoreSession session, uint pipeId)
    {
        var (read, write) = FileDescriptor.Pipe(O.CLOEXEC);
        if (session.Images.PipeData.TryGetValue(pipeId, out var saved))
        {
            Refill(write, saved.Entry, saved.Data);
        }
        return (read, write);
    }

    /// <summary>Gives a new pipe or FIFO its saved capacity and unread bytes, through a descriptor that writes to it.</summary>
    public static void Refill(FileDescriptor writer, PipeDataEntry entry, byte[] data)
    {
        if (entry.HasSize && entry.Size > 0)
        {
            Fcntl.Call(writer, Fcntl.F_SETPIPE_SZ, (int)entry.Size);
        }
        for (long done = 0; done < data.Length;)
        {
            long n = writer.TryWrite(data.AsSpan((int)done));
            if (n <= 0)
            {
                throw new NativeException("write of saved pipe data", n < 0 ? (int)-n : Errno.EIO, $"pipe:[{entry.PipeId}]");
            }
            done += n;
        }
    }
}
