using System.Diagnostics;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Digests;
using CriuPS.Engine.Lazy;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Model;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Cgroups;
using CriuPS.Engine.Resources.Cpu;
using CriuPS.Engine.Resources.Credentials;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Resources.Ipc;
using CriuPS.Engine.Resources.Mounts;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Resources.Network;
using CriuPS.Engine.Resources.Process;
using CriuPS.Engine.Resources.Signals;
using CriuPS.Engine.Resources.Sockets;
using CriuPS.Engine.Resources.Threads;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;
using Tmds.Linux;
using ThreadState = CriuPS.Engine.Resources.Threads.ThreadState;

namespace CriuPS.Engine.Restore;

/// <summary>
/// Restore, top to bottom: read and check every image, open the files the process needs, fork a child with the
/// saved PID from a seized host, turn it into the saved process resource by resource with injected system
/// calls, then set its registers and let it go. A failure kills whatever was created: nothing half-restored
/// survives. Must run on one thread from start to end.
/// </summary>
public static class RestorePipeline
{
    public static RestoredProcess Run(RestoreOptions options, IEngineObserver observer)
    {
        var log = new EngineLog(observer, options.Cancellation);
        RestoredProcess? restored = null;
        try
        {
            restored = Restore(options, log);
            return restored;
        }
        finally
        {
            // A lazy restore's page transfer goes on writing restore.log, and closes it when it ends.
            if (restored?.LazyRestore is null)
            {
                log.Dispose();
            }
        }
    }

    private static RestoredProcess Restore(RestoreOptions options, EngineLog log)
    {
        var total = Stopwatch.StartNew();
        log.Phase("Verifying images");
        EngineWarmup.Wait();
        // Before anything is read into the restore, let alone created: a damaged image is refused naming the file.
        var verified = ImageVerifier.VerifyChain(options.ImagePath, deferPages: options.LazyPages);
        verified.ThrowIfDamaged();
        log.Phase("Reading images");
        var images = ImageSet.Read(options.ImagePath);
        AttachLog(log, images.Directory, options);
        log.Write($"CriuPS {typeof(RestorePipeline).Assembly.GetName().Version} restoring from {images.Directory}");
        LogVerification(log, verified, options.LazyPages);
        var root = images.Root;
        using var session = new RestoreSession(options, log, images)
        {
            PagesVerifiedOnRead = options.LazyPages ? PageVerifier.For(verified) : null,
        };
        CheckCanRestore(session);

        // The order lives in RestoreSteps.Order; what its steps made so far is killed when one fails.
        var steps = new RestoreSteps(session, total);
        try
        {
            steps.RunAll();
        }
        catch (Exception e)
        {
            log.Error(e.ToString());
            KillPartial(steps.Created);
            steps.Host?.Dispose();
            session.Network?.Abandon(log);
            steps.NamespaceInit?.Dispose(); // its namespace dies with it
            CgroupRestore.RemoveCreated(session); // once their members are gone
            // A page source lost mid-way is the cause, whatever the restore tripped over when the transfer killed the process.
            session.Lazy?.Abort($"The restore of process {root.Pid} failed.");
            var cause = session.Lazy?.Status.Error is { Kind: not CheckpointErrorKind.Cancelled } lost ? lost : e;
            throw Explain(cause, root.Pid, log.FilePath);
        }
        finally
        {
            foreach (var memory in steps.Memories)
            {
                memory.Dispose();
            }
        }

        int hostPid = session.Pids.Host(root.Pid);
        int? initPid = session.Pids.InitHostPid;
        steps.NamespaceInit?.Dispose();
        if (!options.Detach)
        {
            ChildReaper.Watch(initPid ?? hostPid); // the namespace's init ends with the root, with its status
        }
        log.Phase("Done");
        log.Write(initPid is null
            ? $"restored {root.Pid} in {total.Elapsed.TotalMilliseconds:F1} ms"
            : $"restored {root.Pid} as {hostPid} in a new PID namespace (its init: {initPid}) in {total.Elapsed.TotalMilliseconds:F1} ms");
        log.EndPhase();
        var restored = new RestoredProcess
        {
            Id = hostPid,
            NamespacePid = root.Pid,
            PidNamespaceInit = initPid,
            Name = root.Name,
            ImagePath = images.Directory,
            ParentId = ProcStat.Read(hostPid).PPid,
            Detached = options.Detach,
            ThreadCount = root.Cores.Count,
            MemoryBytes = root.Pagemap.Sum(e => (long)((e.HasNrPages ? e.NrPages : e.CompatNrPages) << Page.Shift)),
            RestoreTime = total.Elapsed,
            ReadTime = steps.ReadTime,
            VerifyTime = verified.Elapsed,
            MemoryTime = steps.MemoryTime,
            LogPath = log.FilePath,
            LazyRestore = session.Lazy?.Status,
            Cgroups = steps.Cgroups,
        };
        // Last: from here on the transfer owns the log.
        session.Lazy?.Resume(steps.Processes.Select(p => p.Pid));
        return restored;
    }

    // What was verified, and what could not be (images without digests are restored as CRIU restores them).
    private static void LogVerification(EngineLog log, ChainVerification verified, bool lazy)
    {
        foreach (var directory in verified.Directories)
        {
            log.Write(directory.Manifest is null
                ? $"{directory.Directory} has no {DigestManifest.FileName} (an image written by CRIU, or whose digests were removed): restored unverified"
                : $"{directory.Directory}: {directory.Files} files ({directory.Bytes >> 20} MiB) verified against {DigestManifest.FileName}{(lazy ? "; the pages are verified as they are read" : "")}");
        }
        log.Detail($"images verified in {verified.Elapsed.TotalMilliseconds:F1} ms");
    }

    private static void CheckCanRestore(RestoreSession session)
    {
        RestorePrivileges.Check(session);
        CpuFit.Check(session);
        var images = session.Images;
        var root = images.Tree[0];
        if (root.Sid != root.Pid && !session.Options.ShellJob)
        {
            throw new CheckpointException(
                CheckpointErrorKind.ShellJobRequired,
                $"Process {root.Pid} belonged to session {root.Sid}, whose leader is not in the image; it can only be restored into your session as a shell job.",
                session.Options.ImagePath,
                "Restore with -ShellJob (and checkpoint such processes with -ShellJob), or start the process with setsid.");
        }
        bool newNamespace = session.Options.NewPidNamespace || PidLevels.IsNamespaceInit(root, parent: null);
        if (newNamespace)
        {
            CheckNewPidNamespace(session);
        }
        // Stand-ins take the PIDs of gone session and group leaders for a moment. A new namespace has every PID free.
        var ids = newNamespace ? []
            : images.Processes.SelectMany(p => p.Cores.Select(c => c.Tid)).Concat(images.Zombies.Select(z => z.Pid)).Concat(ProcessTree.StandInPids(images.Tree));
        foreach (int id in ids)
        {
            WaitForZombieToGo(id, session.Log);
            if (ProcFiles.Exists(id))
            {
                var holder = ProcStat.Read(id);
                throw new CheckpointException(CheckpointErrorKind.PidInUse,
                    $"PID {id} is in use by '{holder.Comm}'{(holder.State == 'Z' ? " (a zombie)" : "")}; the restored process needs it.",
                    id,
                    $"Stop process {id}, or restore once it has exited.");
            }
        }
        InetSocketRestore.Check(session);
        CgroupRestore.Check(session);
        HugetlbMemory.CheckPools(session);
        MountNamespace.CheckCanRestore(session); // after the cgroups: it may bind one the restore makes
        foreach (var process in images.Processes)
        {
            AddressSpace.CheckMappedFiles(session, process);
            using var pages = process.OpenPages(images.Directory); // checks the chain of parents and the files' sizes
            Vdso.Check(images.Directory, process, pages);
        }
    }

    // What a restore into a new PID namespace needs, and what it does not do yet, before anything is created.
    private static void CheckNewPidNamespace(RestoreSession session)
    {
        var options = session.Options;
        var root = session.Images.Tree[0];
        if (options.NewPidNamespace && PidLevels.IsNamespaceInit(root, parent: null))
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"Process {root.Pid} of '{options.ImagePath}' was the init of its PID namespace (PID 1), and is restored as the init of a new one: -NewPidNamespace would put another init above it.",
                options.ImagePath, "Restore without -NewPidNamespace: the image comes back in a PID namespace of its own anyway.");
        }
        if (options.NewPidNamespace)
        {
            PidNamespaceInit.CheckAvailable(options.ImagePath);
        }
        string? refused = options.LazyPages ? "-LazyPages" : options.ShellJob ? "-ShellJob" : null;
        if (refused is not null)
        {
            string how = options.NewPidNamespace ? "-NewPidNamespace" : $"an image whose root was the init of its PID namespace ({root.Pid})";
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"{how} cannot be combined with {refused} yet: the restored processes would need the engine's PIDs for them.", options.ImagePath,
                $"Restore without {refused}.");
        }
    }

    // A process killed by a dump stays a zombie until its parent (often init) reaps it: give that a moment.
    private static void WaitForZombieToGo(int pid, EngineLog log)
    {
        if (!IsZombie(pid))
        {
            return;
        }
        FileDescriptor pidfd;
        try
        {
            pidfd = Pidfd.Open(pid);
        }
        catch (NativeException e) when (e.Errno == Errno.ESRCH)
        {
            return; // reaped meanwhile
        }
        using (pidfd)
        {
            // A zombie's PID is not given to anyone else: the pidfd is the zombie's unless it was reaped just now.
            if (IsZombie(pid))
            {
                log.Detail($"PID {pid} is still a zombie; waiting for its parent to reap it");
                Pidfd.WaitReaped(pidfd, TimeSpan.FromSeconds(10));
            }
        }
    }

    private static bool IsZombie(int pid)
    {
        try
        {
            return ProcStat.Read(pid).State == 'Z';
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false; // gone
        }
    }

    // restore.log goes into the image directory, or next to it in /tmp when that is read-only.
    private static void AttachLog(EngineLog log, string directory, RestoreOptions options)
    {
        var path = options.LogPath ?? Path.Combine(directory, "restore.log");
        try
        {
            log.AttachFile(path);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            var fallback = Path.Combine(Path.GetTempPath(), $"criups-restore-{Path.GetFileName(directory)}-{DateTime.Now:yyyyMMdd-HHmmss}.log");
            log.AttachFile(fallback);
            log.Warning($"'{path}' is not writable; the restore log is '{fallback}'.");
        }
    }

    // Kills everything created, then waits for each task by its own id, threads before their leaders and children
    // before their parents (a namespace's init ends only once its children are collected, which waits for us, their
    // tracer): a wait for any child could reap children that are not ours to reap.
    private static void KillPartial(IReadOnlyList<Tracee> created)
    {
        foreach (var task in created)
        {
            Kill.Send(task.ProcessId, Signals.SIGKILL);
        }
        foreach (var task in created.Reverse().OrderBy(t => t.Tid == t.ProcessId ? 1 : 0))
        {
            try
            {
                while (true)
                {
                    Wait4.Wait(task.Tid, Wait4.WALL);
                }
            }
            catch (NativeException e) when (e.Errno == Errno.ECHILD)
            {
                // reaped (it was our child, or another's and collected there)
            }
        }
    }

    private static CheckpointException Explain(Exception e, int pid, string? logPath)
    {
        var error = e switch
        {
            CheckpointException known => known,
            OperationCanceledException => new CheckpointException(CheckpointErrorKind.Cancelled, $"The restore of process {pid} was cancelled; nothing was left running.", pid, null, e),
            _ when AccessFailures.Explain(e, pid) is { } denied => denied,
            _ => new CheckpointException(CheckpointErrorKind.RestoreFailed, $"Restore of process {pid} failed: {e.Message}. Nothing was left running.", pid, null, e),
        };
        error.LogPath = logPath;
        return error;
    }
}
