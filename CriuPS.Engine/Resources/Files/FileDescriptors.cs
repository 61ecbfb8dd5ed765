using System.Diagnostics.CodeAnalysis;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Ipc;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// The descriptor table (fdinfo-ID.img): each descriptor's number, close-on-exec flag and the file description
/// behind it. Restore: the engine opens each description, and the process pulls it in with pidfd_getfd and
/// puts it at its number.
/// </summary>
internal static class FileDescriptors
{
    /// <summary>The kind of open file a probed descriptor is, or why CriuPS cannot save it.</summary>
    public static bool TryClassify(DescriptorProbe probe, DumpOptions options, [NotNullWhen(true)] out FileKind? kind, [NotNullWhen(false)] out string? problem)
    {
        kind = FileKinds.For(probe);
        problem = kind is null ? $"fd {probe.Fd}: {Describe(probe)} (not supported yet)" : kind.Problem(probe, options);
        if (problem is not null)
        {
            kind = null;
        }
        return kind is not null;
    }

    /// <summary>Why CriuPS cannot save the descriptor (the pre-flight check), or null.</summary>
    public static string? Problem(DescriptorProbe probe, DumpOptions options) =>
        PosixQueues.IsQueue(probe) ? PosixQueues.Problem(probe) : TryClassify(probe, options, out _, out var problem) ? null : problem;

    private static string Describe(DescriptorProbe probe) => probe.Status.Type switch
    {
        FileStatus.Socket => $"socket {probe.Link}",
        _ when probe.Link.StartsWith("anon_inode:", StringComparison.Ordinal) => AnonInodeKind.DescribeUnsupported(probe.Link),
        _ => probe.Link,
    };

    /// <summary>A descriptor as /proc shows it, with its fdinfo (null when that could not be read ahead).</summary>
    public sealed record Probed(DescriptorProbe Probe, FdInfo? Info);

    /// <summary>
    /// What /proc shows of every descriptor of the frozen processes (link, status, fdinfo), read on every core: a
    /// tree of 32 processes of 67 descriptors spent 55 ms of its freeze reading them one by one, about 25 µs each.
    /// What is made of them (descriptions, ids, images) stays in order on the dump's thread, <see cref="Dump"/>.
    /// </summary>
    public static Dictionary<int, List<Probed>> ProbeAll(IReadOnlyList<DumpedProcess> processes)
    {
        var pids = processes.Select(p => p.Pid).ToList();
        var probed = OnEveryCore.Read(pids, pid => DescriptorProbe.All(pid).Select(probe => new Probed(probe, TryReadInfo(pid, probe.Fd))).ToList());
        return pids.Zip(probed).ToDictionary(p => p.First, p => p.Second);
    }

    private static FdInfo? TryReadInfo(int pid, int fd)
    {
        try
        {
            return FdInfo.Read(pid, fd);
        }
        catch (IOException)
        {
            return null; // read again in order by Dump, which then fails as it always has
        }
    }

    /// <param name="probed">The process's descriptors, from <see cref="ProbeAll"/>.</param>
    public static void Dump(DumpedProcess process, DumpSession session, List<Probed> probed)
    {
        int pid = process.Pid;
        using var pidfd = Pidfd.Open(pid);
        foreach (var (probe, infoAhead) in probed)
        {
            int fd = probe.Fd;
            if (PosixQueues.IsQueue(probe))
            {
                // Saved in an image of CriuPS's own, not in fdinfo: CRIU would not know its file type.
                PosixQueues.Dump(session, process, probe, infoAhead ?? FdInfo.Read(pid, fd));
                continue;
            }
            if (!TryClassify(probe, session.Options, out var kind, out var problem))
            {
                throw new CheckpointException(
                    problem.Contains("-ShellJob") ? CheckpointErrorKind.ShellJobRequired
                    : problem.Contains(Sockets.InetSockets.TcpEstablishedSwitch) ? CheckpointErrorKind.TcpEstablishedRequired
                    : CheckpointErrorKind.Unsupported,
                    $"Process {pid} has {problem}, which CriuPS cannot save.", pid);
            }
            var info = infoAhead ?? FdInfo.Read(pid, fd);
            uint id = SaveDescription(session, process, probe, kind, info, pidfd, out bool isNew);
            FileLocks.Dump(session, pid, fd, info, newDescription: isNew);
            process.FileDescriptors.Add(new FdinfoEntry
            {
                Id = id,
                Flags = (info.Flags & O.CLOEXEC) != 0 ? (uint)Fcntl.FD_CLOEXEC : 0,
                Type = kind.Type,
                Fd = (uint)fd,
            });
        }
        session.Log.Detail($"descriptors of {pid}: {process.FileDescriptors.Count}");
    }

    /// <summary>
    /// The id of the open file description behind a probed descriptor: that of a description already saved (another
    /// descriptor shares it), or a new one, saved now in files.img.
    /// </summary>
    /// <param name="process">The process the description is saved for (its credentials read the owner, its namespaces place sockets).</param>
    /// <param name="pidfd">A pidfd of the process that holds <paramref name="probe"/>'s descriptor.</param>
    public static uint SaveDescription(DumpSession session, DumpedProcess process, DescriptorProbe probe, FileKind kind, FdInfo info, FileDescriptor pidfd, out bool isNew)
    {
        uint? known = session.Files.FindDescription(probe.Pid, probe.Fd, probe.Status, info.Flags);
        isNew = known is null;
        if (known is { } id)
        {
            return id;
        }
        id = session.Files.NewId();
        session.Files.RememberDescription(probe.Pid, probe.Fd, probe.Status, info.Flags, id);
        using var copy = Pidfd.GetFd(pidfd, probe.Fd);
        // An O_PATH description has no owner (fcntl refuses it EBADF): it delivers no signals.
        var owner = (info.Flags & O.PATH) != 0 ? FileOwner.None : FileOwner.Read(copy, process.Status.Uids[0], process.Status.Uids[1]);
        session.Files.Add(kind.Dump(new DescriptorDump(session, process, probe, id, info, owner, copy)));
        return id;
    }

    /// <summary>
    /// Opens, in the engine, every file description the processes need, but those that can only be opened once the
    /// processes exist (<see cref="OpenOnceProcessesExist"/>).
    /// </summary>
    public static void OpenForRestore(RestoreSession session)
    {
        foreach (var fd in SavedDescriptors(session).Where(d => !NeedsProcesses(session, d.Fd) && !NeedsMountNamespace(session, d.Fd)))
        {
            Open(session, fd.Images, fd.Fd);
        }
        // Pipe ends that no descriptor uses (a peer outside the tree) are closed now: the other end sees it.
        foreach (var (read, write) in session.Pipes.Values)
        {
            if (!session.OpenFiles.ContainsValue(read))
            {
                read.Dispose();
            }
            if (!session.OpenFiles.ContainsValue(write))
            {
                write.Dispose();
            }
        }
    }

    /// <summary>Opens the file descriptions that name processes of the tree (files under /proc/PID, pidfds), which exist now.</summary>
    public static void OpenOnceProcessesExist(RestoreSession session)
    {
        foreach (var fd in SavedDescriptors(session).Where(d => NeedsProcesses(session, d.Fd)))
        {
            Open(session, fd.Images, fd.Fd);
        }
    }

    /// <summary>
    /// Opens the files of the saved mount namespace through the namespace, made again now: "/bin/busybox" of a
    /// container is its root's, not the host's.
    /// </summary>
    public static void OpenInMountNamespace(RestoreSession session)
    {
        foreach (var fd in SavedDescriptors(session).Where(d => NeedsMountNamespace(session, d.Fd)))
        {
            Open(session, fd.Images, fd.Fd);
        }
    }

    private static bool NeedsMountNamespace(RestoreSession session, FdinfoEntry fd) =>
        session.Images.File(fd.Id) is { Type: FdTypes.Reg } file && !NeedsProcesses(session, fd) && GhostFiles.GhostOf(session.Images, file.Id) is null
        && Mounts.NamespaceView.IsInSavedNamespace(session.Images, file.Reg);

    /// <summary>
    /// Gives every description its saved owner for SIGIO, once every process and thread of the tree exists: the kernel
    /// refuses an owner that does not exist (yet).
    /// </summary>
    public static void RestoreOwners(RestoreSession session)
    {
        foreach (var (id, description) in session.OpenFiles)
        {
            var file = session.Images.File(id);
            FileOwner.Restore(description, FileKinds.For(file.Type)!.Saved(session.Images, file).Owner);
        }
    }

    private static IEnumerable<(ProcessImages Images, FdinfoEntry Fd)> SavedDescriptors(RestoreSession session) =>
        session.Images.Processes.SelectMany(p => p.FileDescriptors.Select(fd => (p, fd)));

    private static bool NeedsProcesses(RestoreSession session, FdinfoEntry fd) => session.Images.File(fd.Id) switch
    {
        { Type: FdTypes.Reg } file => ProcFileOfTree.Names(session.Images, file.Reg.Name) is not null,
        { Type: FdTypes.Pidfd } => true,
        _ => false,
    };

    private static void Open(RestoreSession session, ProcessImages images, FdinfoEntry fd) =>
        OpenDescription(session, fd.Id, $"fd {fd.Fd} of process {images.Pid}");

    /// <summary>
    /// The engine's descriptor of the file description with id <paramref name="id"/>, opened now unless it was
    /// already; null when only a restored process can open it.
    /// </summary>
    /// <param name="usedBy">What needs the description, as errors name it ("fd 4 of process 12").</param>
    public static FileDescriptor? OpenDescription(RestoreSession session, uint id, string usedBy)
    {
        if (session.OpenFiles.TryGetValue(id, out var open))
        {
            return open;
        }
        var file = session.Images.File(id);
        var kind = FileKinds.For(file.Type) ?? throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
            $"{usedBy} is of type {file.Type}, which CriuPS cannot restore yet.", usedBy);
        if (kind.OpensInRestoredProcess(session, file))
        {
            return null;
        }
        var description = kind.Open(session, file);
        session.OpenFiles[id] = description;
        StatusFlags.Restore(description, kind.Saved(session.Images, file).Flags, $"{usedBy} ({file.Type})");
        return description;
    }

    /// <summary>Installs every saved descriptor in the process, at its number, with its close-on-exec flag.</summary>
    /// <remarks>
    /// All in one batch of injected calls: pidfd_open of the engine, moved above the saved numbers, then per descriptor
    /// pidfd_getfd and, unless it landed on its number, dup3 and close. A batch cannot feed one call's result to the
    /// next, so the numbers the kernel will hand out are worked out beforehand from the process's descriptor table
    /// (the kernel always takes the lowest free number) and checked against what it returned.
    /// </remarks>
    public static void Restore(RestoreSession session, RestoringProcess process)
    {
        var fds = process.Images.FileDescriptors.OrderBy(f => f.Fd).ToList();
        if (fds.Count == 0)
        {
            return;
        }
        var table = new DescriptorTable(ProcFiles.FileDescriptors(process.HostPid));
        var batch = new SyscallBatch(process.Injection);
        var expected = new List<(int Call, int Number)>();

        // Our pidfd must not sit on a number the process needs: move it above all of them.
        int first = table.Take();
        expected.Add((batch.Add("pidfd_open of the engine", session.EnginePidfdCall), first));
        int pidfd = table.Take((int)fds[^1].Fd + 1);
        expected.Add((batch.Add("fcntl(F_DUPFD_CLOEXEC)", RemoteCall.DuplicateCloseOnExec(first, (int)fds[^1].Fd + 1)), pidfd));
        batch.Add("close", RemoteCall.Close(first));
        table.Release(first);
        foreach (var fd in fds)
        {
            var mine = session.OpenFiles.GetValueOrDefault(fd.Id) ?? throw new CheckpointException(CheckpointErrorKind.RestoreFailed,
                $"fd {fd.Fd} of process {process.Pid} could not be opened again: only a process of its session could open it, and none did.", process.Pid);
            int pulled = table.Take();
            expected.Add((batch.Add(() => $"pidfd_getfd of fd {fd.Fd}", RemoteCall.PidfdGetfd(pidfd, mine.Value)), pulled));
            bool closeOnExec = (fd.Flags & Fcntl.FD_CLOEXEC) != 0;
            if (pulled != fd.Fd)
            {
                batch.Add(() => $"dup3 to fd {fd.Fd}", RemoteCall.Dup3(pulled, (int)fd.Fd, closeOnExec));
                batch.Add("close", RemoteCall.Close(pulled));
                table.Release(pulled);
                table.Add((int)fd.Fd);
            }
            else if (!closeOnExec)
            {
                batch.Add(() => $"fcntl(F_SETFD) of fd {fd.Fd}", RemoteCall.SetDescriptorFlags((int)fd.Fd, 0));
            }
        }
        batch.Add("close", RemoteCall.Close(pidfd));
        var results = batch.Run();
        foreach (var (call, number) in expected.Where(e => results[e.Call] != e.Number))
        {
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed,
                $"Process {process.Pid} got descriptor {results[call]} where {number} was due; its descriptor table changed during the restore.", process.Pid);
        }
        StatusFlags.RestoreAsync(session, process, fds);
        foreach (var fd in fds)
        {
            var file = session.Images.File(fd.Id);
            FileKinds.For(file.Type)!.AfterInstall(session, process, fd, file);
        }
        session.Log.Detail($"descriptors of {process.Pid}: {fds.Count} installed");
    }
}
