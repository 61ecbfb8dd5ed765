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
    private static readonly ByteCount InjectionAreaSize = ByteCount.FromMiB(1);

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

        RestoreHost? host = null;
        RestoreHost? namespaceInit = null;
        var created = new List<Tracee>();
        var memories = new List<ProcessMemory>();
        TimeSpan readTime, memoryTime;
        IReadOnlyList<string> cgroups;
        var processes = new List<RestoringProcess>();
        try
        {
            // Before the sockets, which are made inside it.
            session.Network = TreeNetwork.Prepare(session);
            FileDescriptors.OpenForRestore(session);
            FileLocks.TakeOnDescriptions(session);
            FailurePoint.Check(options.FailAt, FailurePoint.AfterSockets);
            readTime = total.Elapsed;
            if (options.LazyPages)
            {
                session.Lazy = new LazyTransfer(LazyPageSources.Open(session), log, root.Pid);
            }

            log.Phase("Creating the processes");
            int enginePidfd = EnginePidfdNumber(images);
            if (options.NewPidNamespace)
            {
                host = namespaceInit = RestoreHost.StartNamespaceInit(root.Pid, enginePidfd, childOfCaller: !options.Detach, InjectionAreaSize, log);
                session.Pids = new RestoredPids(namespaceInit.Pid, enginePidfd);
            }
            else
            {
                host = RestoreHost.Start(options.ShellJob, log);
            }
            var shells = TreeBuilder.Create(session, host, InjectionAreaSize, childOfCaller: !options.Detach, created.Add, enginePidfd);
            if (namespaceInit is null)
            {
                host.Dispose(); // the tree is all we need; with -Detach its root now belongs to init
            }
            host = null;
            memories.AddRange(shells.Select(s => s.Memory));
            processes = shells.Where(s => !s.IsZombie)
                .Select(s => new RestoringProcess(images.Processes.First(p => p.Pid == s.Pid), s.Leader, s.Memory, s.Injection))
                .ToList();
            log.Detail($"created {shells.Count} process(es), {images.Zombies.Count} of them zombies");
            FileDescriptors.OpenOnceProcessesExist(session);
            foreach (var process in OnePerTable(processes, p => p.Images.Ids.FilesId))
            {
                CloseInherited(session, process);
            }
            FailurePoint.Check(options.FailAt, FailurePoint.AfterCreate);

            // Before memory: each process attaches its System V segments again, which must exist in its namespace.
            IpcNamespace.Restore(session, processes);
            // Before memory and files, which a mount namespace of their own names in its view (a container's root); its
            // sysfs is of the network namespace, its cgroup binds of the cgroups made here, setns through the engine's /proc.
            foreach (var process in processes)
            {
                session.Network.Join(session, process); // setns needs CAP_SYS_ADMIN, which the credentials may drop
            }
            UtsNamespace.Restore(session, processes); // its setns goes through the engine's /proc too
            TimeNamespaces.Restore(session, processes); // as UTS; and while every process is single-threaded (setns needs it)
            CgroupRestore.MakeMissing(session);
            MountNamespaceRestore.Restore(session, processes);
            FileDescriptors.OpenInMountNamespace(session);

            log.Phase("Restoring memory");
            var memoryClock = Stopwatch.StartNew();
            foreach (var process in processes)
            {
                AddressSpace.Restore(session, process);
                MmFields.Restore(session, process);
            }
            IpcNamespace.Finish(session);
            Memfds.ApplyLateSeals(session);
            memoryTime = memoryClock.Elapsed + ForkedMemory.Elapsed(session); // a tree's private memory came in as it was forked
            FailurePoint.Check(options.FailAt, FailurePoint.AfterMemory);

            log.Phase("Restoring files");
            foreach (var process in OnePerTable(processes, p => p.Images.Ids.FilesId))
            {
                FileDescriptors.Restore(session, process);
                PosixQueues.Install(session, process);
            }
            foreach (var process in processes)
            {
                FileLocks.TakeInProcess(session, process);
            }
            FailurePoint.Check(options.FailAt, FailurePoint.AfterFiles);

            log.Phase("Restoring process state");
            foreach (var process in processes)
            {
                SignalHandlers.Restore(process);
                TaskAttributes.Restore(session, process);
            }
            // After the attributes (the login uid is written through /proc, which a new root may not have) and
            // before the credentials (chroot needs CAP_SYS_CHROOT).
            foreach (var process in OnePerTable(processes, p => p.Images.Ids.FsId))
            {
                FsState.Restore(session, process);
            }
            foreach (var process in processes)
            {
                ThreadGroup.CreateThreads(process);
                created.AddRange(process.Threads.Skip(1).Select(t => t.Tracee));
                PosixTimers.Restore(process); // after the threads: a timer may signal one of them
                foreach (var thread in process.Threads)
                {
                    ThreadState.Restore(process, thread.Tracee, thread.Core, thread.Caller);
                    var creds = thread.Core.ThreadCore.Creds;
                    var current = ProcStatus.ReadThread(process.HostPid, thread.Tid);
                    if (creds is not null && Creds.Differ(creds, current))
                    {
                        Creds.Restore(creds, current, thread.Caller, process.Injection.Scratch);
                    }
                    // A change of credentials clears the parent-death signal and resets the dumpable flag.
                    ThreadState.RestoreParentDeathSignal(thread.Core, thread.Caller);
                }
                MmFields.RestoreDumpable(process);
                // Last: a filter may forbid the calls above.
                foreach (var thread in process.Threads)
                {
                    Seccomp.Restore(session, process, thread.Caller, thread.Core.ThreadCore);
                }
            }
            // Once every process, group and thread exists: an owner may name any of them.
            FileDescriptors.RestoreOwners(session);
            FailurePoint.Check(options.FailAt, FailurePoint.AfterCredentials);
            // Every thread exists and none has run: each goes into its own cgroups.
            CgroupRestore.Place(session, processes);
            FailurePoint.Check(options.FailAt, FailurePoint.AfterCgroups);
            cgroups = CgroupRestore.Where(session.Pids.Host(root.Pid));

            log.Phase("Resuming");
            if (session.Pids.EnginePidfd is int inherited)
            {
                foreach (var process in OnePerTable(processes, p => p.Images.Ids.FilesId))
                {
                    process.Caller.Checked("close of the engine's pidfd", SyscallNumber.Close, (ulong)inherited);
                }
            }
            foreach (var process in processes)
            {
                SetFinalState(process);
            }
            // Every process is whole: the network lock goes, and the connections leave repair mode.
            session.InetSockets?.Resume();
            FailurePoint.Check(options.FailAt, FailurePoint.BeforeResume);
            // Its /proc mounted and let go before the tree runs: the tree must see the namespace's PIDs in /proc.
            if (namespaceInit is not null && session.Pids.EnginePidfd is int pidfd)
            {
                namespaceInit.Release(pidfd);
            }
            // Children first: a parent that runs first could already signal or wait for them.
            foreach (var process in Enumerable.Reverse(processes))
            {
                foreach (var thread in process.Threads)
                {
                    thread.Tracee.Detach();
                }
            }
            log.Write($"{processes.Sum(p => p.Threads.Sum(t => t.Caller.CallCount))} injected system calls");
            IpcNamespace.Keep(session);
        }
        catch (Exception e)
        {
            log.Error(e.ToString());
            KillPartial(created);
            host?.Dispose();
            session.Network?.Abandon(log);
            namespaceInit?.Dispose(); // its namespace dies with it
            CgroupRestore.RemoveCreated(session); // once their members are gone
            // A page source lost mid-way is the cause, whatever the restore tripped over when the transfer killed the process.
            session.Lazy?.Abort($"The restore of process {root.Pid} failed.");
            var cause = session.Lazy?.Status.Error is { Kind: not CheckpointErrorKind.Cancelled } lost ? lost : e;
            throw Explain(cause, root.Pid, log.FilePath);
        }
        finally
        {
            foreach (var memory in memories)
            {
                memory.Dispose();
            }
        }

        int hostPid = session.Pids.Host(root.Pid);
        int? initPid = session.Pids.InitHostPid;
        namespaceInit?.Dispose();
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
            ReadTime = readTime,
            VerifyTime = verified.Elapsed,
            MemoryTime = memoryTime,
            LogPath = log.FilePath,
            LazyRestore = session.Lazy?.Status,
            Cgroups = cgroups,
        };
        // Last: from here on the transfer owns the log.
        session.Lazy?.Resume(processes.Select(p => p.Pid));
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
            : images.Processes.SelectMany(p => p.Cores.Select(c => c.Tid)).Concat(images.Zombies.Select(z => z.Pid)).Concat(TreeBuilder.StandInPids(images.Tree));
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
        MountNamespaceRestore.CheckCanRestore(session); // after the cgroups: it may bind one the restore makes
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

    /// <summary>
    /// Where the tree keeps the engine's pidfd that it inherits from the init of a new PID namespace: above every
    /// descriptor of the images, so that none is installed over it.
    /// </summary>
    private static int EnginePidfdNumber(ImageSet images) =>
        Math.Max(3, images.Processes.SelectMany(p => p.FileDescriptors).Select(f => (int)f.Fd + 1).DefaultIfEmpty(0).Max());

    /// <summary>
    /// Closes what a process inherited from the host (or the namespace's init): every descriptor, but the engine's
    /// pidfd in a new PID namespace, which the restore needs until the end.
    /// </summary>
    private static void CloseInherited(RestoreSession session, RestoringProcess process)
    {
        if (session.Pids.EnginePidfd is int kept)
        {
            process.Caller.Checked("close_range", SyscallNumber.CloseRange, 0, (ulong)(kept - 1), 0);
            process.Caller.Checked("close_range", SyscallNumber.CloseRange, (ulong)(kept + 1), uint.MaxValue, 0);
            return;
        }
        process.Caller.Checked("close_range", SyscallNumber.CloseRange, 0, uint.MaxValue, 0);
    }

    /// <summary>The first process of each group sharing a kernel object (an fd table, fs information).</summary>
    private static IEnumerable<RestoringProcess> OnePerTable(IEnumerable<RestoringProcess> processes, Func<RestoringProcess, uint> table) =>
        processes.GroupBy(table).Select(g => g.First());

    /// <summary>
    /// Gives every thread its final registers, FPU state and signal mask while all are still stopped; the leader
    /// last, since its final step removes the injection code the others are stopped on.
    /// </summary>
    private static void SetFinalState(RestoringProcess process)
    {
        foreach (var thread in process.Threads.Skip(1))
        {
            var (threadRegs, threadXState) = ThreadState.FinalState(thread.Core, thread.Caller, process.Injection.Scratch);
            thread.Tracee.SetRegs(threadRegs);
            thread.Tracee.SetXState(threadXState);
            Native.Interop.Ptrace.SetSigMask(thread.Tid, SavedMask(thread.Core));
        }
        var core = process.Images.LeaderCore;
        var (regs, xstate) = ThreadState.FinalState(core, process.Caller, process.Injection.Scratch);
        process.Injection.End(regs);
        process.Leader.SetXState(xstate);
        Native.Interop.Ptrace.SetSigMask(process.HostPid, SavedMask(core));
        if (core.Tc.TaskState == TaskAttributes.TaskStopped)
        {
            LibC.kill(process.HostPid, Signals.SIGSTOP);
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
            LibC.kill(task.ProcessId, Signals.SIGKILL);
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

    private static ulong SavedMask(Images.Proto.CoreEntry core) =>
        core.ThreadCore.HasBlkSigset ? core.ThreadCore.BlkSigset : core.Tc.BlkSigset;

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
