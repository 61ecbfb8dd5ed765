using CriuPS.Native.RemoteSyscall;
using System.Text.RegularExpressions;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Ipc;

/// <summary>
/// POSIX message queues (mq_open): a descriptor is a file of the mqueue file system of the IPC namespace it was opened
/// in. CRIU saves none; CriuPS saves each queue the tree has open once in criups-mqueue.img (its own image): name,
/// owner, mode, limits, and its messages with their priorities, which only receiving reads, so they are received
/// through a description of the engine's own and sent back at once, in the order received (which keeps the order
/// within a priority), before anything else happens: a dump that fails later, or is killed, leaves the queue as it
/// was. A queue with a notification registered (mq_notify) is refused: the queue emptied and filled again would fire
/// it. At restore the queue is made in the mqueue file system of the tree's IPC namespace (in the host's, one that
/// still exists with the same limits is opened as it is, with what it holds now), each saved open file description
/// is opened again with its flags, and each descriptor installed at its number.
/// </summary>
internal static partial class PosixQueues
{
    private const int DescriptionFlags = O.ACCMODE | O.NONBLOCK;

    /// <summary>Whether the descriptor is a POSIX message queue: a regular file of the mqueue file system.</summary>
    public static bool IsQueue(DescriptorProbe probe) =>
        probe.Status.Type == FileStatus.Regular && Statfs.FileSystemType($"/proc/{probe.Pid}/fd/{probe.Fd}") == Statfs.MqueueMagic;

    /// <summary>Why the queue behind the descriptor cannot be saved, or null.</summary>
    public static string? Problem(DescriptorProbe probe)
    {
        if (GhostFiles.IsDeleted(probe.Link))
        {
            return $"fd {probe.Fd}: POSIX message queue '{probe.Link}', unlinked (a queue without a name is not supported)";
        }
        // Reading a queue's file gives "QSIZE:... NOTIFY:... SIGNO:... NOTIFY_PID:...".
        var notify = NotifyPid().Match(ProcFiles.ReadText($"/proc/{probe.Pid}/fd/{probe.Fd}"));
        return notify.Success && notify.Groups[1].Value != "0"
            ? $"fd {probe.Fd}: POSIX message queue '{probe.Link}' with a notification registered by process {notify.Groups[1].Value} (mq_notify; not supported: saving the messages would fire it)"
            : null;
    }

    /// <summary>At dump: saves the queue behind the descriptor (once for the tree) and the descriptor itself.</summary>
    public static void Dump(DumpSession session, DumpedProcess process, DescriptorProbe probe, FdInfo info)
    {
        if (Problem(probe) is { } problem)
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported, $"Process {process.Pid} has {problem}, which CriuPS cannot save.", process.Pid);
        }
        var saved = session.State<SavedQueues>();
        var key = (probe.Status.Device, probe.Status.Inode);
        if (!saved.ByInode.TryGetValue(key, out var entry))
        {
            entry = Read(session, probe);
            saved.ByInode[key] = entry;
            session.AddImageEntry(ImageTypes.CriupsMqueue, null, entry);
            session.Log.Detail($"POSIX message queue {entry.Name}: {entry.Messages.Count} message(s) saved and sent back");
        }
        uint? known = session.Files.FindDescription(process.Pid, probe.Fd, probe.Status, info.Flags);
        uint id = known ?? session.Files.NewId();
        if (known is null)
        {
            session.Files.RememberDescription(process.Pid, probe.Fd, probe.Status, info.Flags, id);
        }
        entry.Fds.Add(new CriupsMqueueFd
        {
            Pid = (uint)process.Pid, Fd = (uint)probe.Fd, Description = id, Flags = (uint)(info.Flags & DescriptionFlags), Cloexec = (info.Flags & O.CLOEXEC) != 0,
        });
    }

    // The queue's attributes, and its messages received and sent back.
    private static CriupsMqueueEntry Read(DumpSession session, DescriptorProbe probe)
    {
        using var queue = FileDescriptor.Open($"/proc/{probe.Pid}/fd/{probe.Fd}", O.RDWR | O.NONBLOCK | O.CLOEXEC);
        var attributes = PosixMqueue.Attributes(queue);
        var status = FileStatus.Of(queue);
        var entry = new CriupsMqueueEntry
        {
            Name = probe.Link, Mode = status.Mode & 0xfff, Uid = status.Uid, Gid = status.Gid,
            Maxmsg = (ulong)attributes.MaxMessages, Msgsize = (ulong)attributes.MessageSize,
        };
        var taken = new List<(byte[] Data, uint Priority)>();
        try
        {
            while (PosixMqueue.Receive(queue, attributes.MessageSize) is { } message)
            {
                taken.Add(message);
            }
            FailurePoint.Check(session.Options.FailAt, FailurePoint.MqueueRead);
        }
        finally
        {
            // Whatever happened: the target's queue holds its messages again, in the order mq_receive gave them.
            foreach (var (data, priority) in taken)
            {
                PosixMqueue.Send(queue, data, priority);
            }
        }
        entry.Messages.AddRange(taken.Select(m => new CriupsMqueueMessage { Priority = m.Priority, Data = Google.Protobuf.ByteString.CopyFrom(m.Data) }));
        return entry;
    }

    /// <summary>
    /// At restore, in the IPC namespace of the tree (the calling thread's): makes or finds every saved queue and opens
    /// every saved description of it, for <see cref="Install"/>.
    /// </summary>
    public static void Restore(RestoreSession session, bool ownNamespace)
    {
        var state = session.State<RestoredQueues>();
        foreach (var entry in Saved(session.Images))
        {
            using var existing = ownNamespace ? null : PosixMqueue.Open(entry.Name, O.RDONLY | O.NONBLOCK);
            if (existing is not null)
            {
                var now = PosixMqueue.Attributes(existing);
                if ((ulong)now.MaxMessages != entry.Maxmsg || (ulong)now.MessageSize != entry.Msgsize)
                {
                    throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                        $"The tree had POSIX message queue {entry.Name} ({entry.Maxmsg} messages of {entry.Msgsize} bytes) open, and {entry.Name} is now another queue ({now.MaxMessages} messages of {now.MessageSize} bytes).",
                        session.Images.Directory, $"Remove that queue if it is not needed, or restore where {entry.Name} is free or the saved queue.");
                }
                session.Log.Detail($"POSIX message queue {entry.Name}: still there, opened as it is");
            }
            else
            {
                Make(entry);
                if (!ownNamespace)
                {
                    state.MadeInHost.Add(entry.Name);
                }
                session.Log.Detail($"POSIX message queue {entry.Name}: made again with {entry.Messages.Count} message(s)");
            }
            foreach (var description in entry.Fds.GroupBy(f => f.Description))
            {
                state.Descriptions[description.Key] = PosixMqueue.Open(entry.Name, (int)description.First().Flags)
                    ?? throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"POSIX message queue {entry.Name} went away while it was restored.", session.Images.Directory);
            }
        }
    }

    // Made by a thread whose effective ids are the queue's owner's (the owner of a queue is its creator), then filled.
    private static void Make(CriupsMqueueEntry entry)
    {
        FileDescriptor made;
        using (ThreadIdentity.Become(entry.Uid, entry.Gid))
        {
            made = PosixMqueue.Create(entry.Name, O.WRONLY | O.NONBLOCK, entry.Mode & 0x1ff, (long)entry.Maxmsg, (long)entry.Msgsize);
        }
        using (made)
        {
            foreach (var message in entry.Messages)
            {
                PosixMqueue.Send(made, message.Data.Span, message.Priority);
            }
        }
    }

    /// <summary>Once the process has its other descriptors: puts each of its queue descriptors at its number, with its close-on-exec flag.</summary>
    public static void Install(RestoreSession session, RestoringProcess process)
    {
        var fds = Saved(session.Images).SelectMany(e => e.Fds).Where(f => f.Pid == process.Pid).ToList();
        if (fds.Count == 0)
        {
            return;
        }
        var descriptions = session.State<RestoredQueues>().Descriptions;
        var caller = process.Caller;
        // Our descriptors go above every number the process uses, so that none lands on a number it needs.
        int above = process.Images.FileDescriptors.Select(f => (int)f.Fd).Concat(fds.Select(f => (int)f.Fd)).Max() + 1;
        int pidfd = caller.OpenEnginePidfd(session, above);
        try
        {
            foreach (var fd in fds)
            {
                int pulled = caller.MoveAbove(caller.Checked($"pidfd_getfd of POSIX message queue fd {fd.Fd}", RemoteCall.PidfdGetfd(pidfd, descriptions[fd.Description].Value)), above, $"queue fd {fd.Fd}");
                caller.Checked($"dup3 to fd {fd.Fd}", RemoteCall.Dup3(pulled, (int)fd.Fd, fd.Cloexec));
                caller.Call(RemoteCall.Close(pulled));
            }
        }
        finally
        {
            caller.Call(RemoteCall.Close(pidfd));
        }
        session.Log.Detail($"process {process.Pid}: {fds.Count} POSIX message queue descriptor(s) installed");
    }

    /// <summary>The restore succeeded: the queues made in the host's namespace stay.</summary>
    public static void Keep(RestoreSession session) => session.State<RestoredQueues>().MadeInHost.Clear();

    // The saved queues, checked: a name the kernel cannot have, a message longer than its queue's, a descriptor of a
    // process the image does not hold is ImageCorrupt naming the file.
    private static IEnumerable<CriupsMqueueEntry> Saved(ImageSet images)
    {
        string file = Path.Combine(images.Directory, ImageTypes.CriupsMqueue.FileName(null));
        var pids = images.Processes.Select(p => (uint)p.Pid).ToHashSet();
        foreach (var entry in images.Entries(ImageTypes.CriupsMqueue).Select(e => (CriupsMqueueEntry)e.Message))
        {
            string? problem =
                entry.Name.Length < 2 || entry.Name[0] != '/' || entry.Name.IndexOf('/', 1) >= 0 || entry.Name.Length > 256 ? "its name is no queue's ('/' then up to 255 characters without '/')"
                : entry.Maxmsg == 0 || entry.Msgsize == 0 || entry.Maxmsg > int.MaxValue || entry.Msgsize > int.MaxValue ? "its limits are no queue's"
                : entry.Messages.Count > (long)entry.Maxmsg || entry.Messages.Any(m => (ulong)m.Data.Length > entry.Msgsize) ? "it holds more or longer messages than its limits allow"
                : entry.Fds.FirstOrDefault(f => !pids.Contains(f.Pid) || (f.Flags & ~(uint)DescriptionFlags) != 0) is { } fd ? $"fd {fd.Fd} of process {fd.Pid} is no descriptor of the image's processes, or has flags no queue description has"
                : null;
            if (problem is not null)
            {
                throw ImageDamage.In(file, $"POSIX message queue {entry.Name}: {problem}.");
            }
            yield return entry;
        }
    }

    [GeneratedRegex(@"NOTIFY_PID:\s*(\d+)")]
    private static partial Regex NotifyPid();

    private sealed class SavedQueues
    {
        public Dictionary<(ulong Device, ulong Inode), CriupsMqueueEntry> ByInode { get; } = new();
    }

    /// <summary>The descriptions opened for the restore, by saved id; the queues made in the host's namespace, which a failed restore unlinks.</summary>
    private sealed class RestoredQueues : IDisposable
    {
        public Dictionary<uint, FileDescriptor> Descriptions { get; } = new();

        public List<string> MadeInHost { get; } = new();

        public void Dispose()
        {
            foreach (var description in Descriptions.Values)
            {
                description.Dispose();
            }
            foreach (var name in MadeInHost)
            {
                try
                {
                    PosixMqueue.Unlink(name);
                }
                catch (NativeException)
                {
                    // gone already
                }
            }
            MadeInHost.Clear();
        }
    }
}
