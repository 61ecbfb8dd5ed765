using System.Diagnostics;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Model;
using CriuPS.Engine.Resources.Credentials;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Resources.Process;
using CriuPS.Engine.Resources.Signals;
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
        var total = Stopwatch.StartNew();
        using var log = new EngineLog(observer, options.Cancellation);
        log.Phase("Reading images");
        var images = ImageSet.Read(options.ImagePath);
        AttachLog(log, images.Directory, options);
        log.Write($"CriuPS {typeof(RestorePipeline).Assembly.GetName().Version} restoring from {images.Directory}");
        var root = images.Root;
        using var session = new RestoreSession(options, log, images);
        CheckCanRestore(session, root);
        FileDescriptors.OpenForRestore(session, root);
        var readTime = total.Elapsed;

        RestoreHost? host = null;
        Tracee? child = null;
        IReadOnlyList<Tracee> threads = Array.Empty<Tracee>();
        TimeSpan memoryTime;
        try
        {
            log.Phase("Creating the process");
            host = RestoreHost.Start(options.ShellJob, log);
            var (tracee, scratch) = host.ForkChild(root.Pid, root.Mm.Vmas, InjectionAreaSize, childOfCaller: !options.Detach);
            child = tracee;
            host.Dispose(); // the child is all we need; with -Detach it now belongs to init
            host = null;
            Native.Interop.Ptrace.SetSigMask(child.Tid, ulong.MaxValue);
            using var memory = ProcessMemory.Open(child.Tid);
            var process = new RestoringProcess(root, child, memory, Injection.Adopt(child, memory, scratch));
            ThreadState.UnregisterInheritedRseq(child, process.Caller);
            process.Caller.Checked("close_range", SyscallNumber.CloseRange, 0, uint.MaxValue, 0);

            log.Phase("Restoring memory");
            var memoryClock = Stopwatch.StartNew();
            AddressSpace.Restore(session, process);
            MmFields.Restore(session, process);
            memoryTime = memoryClock.Elapsed;

            log.Phase("Restoring files");
            FileDescriptors.Restore(session, process);
            FsState.Restore(session, process);

            log.Phase("Restoring process state");
            ProcessTree.RestoreSessionAndGroup(session, process);
            SignalHandlers.Restore(process);
            TaskAttributes.Restore(session, process);
            ThreadGroup.CreateThreads(process);
            threads = process.Threads.Select(t => t.Tracee).ToList();
            foreach (var thread in process.Threads)
            {
                ThreadState.Restore(process, thread.Tracee, thread.Core, thread.Caller);
                var creds = thread.Core.ThreadCore.Creds;
                if (creds is not null && Creds.Differ(creds, ProcStatus.ReadThread(root.Pid, thread.Tid)))
                {
                    Creds.Restore(creds, thread.Caller, process.Injection.Scratch);
                }
            }

            log.Phase("Resuming");
            // Every thread gets its final state while all are still stopped; the leader last, since its final
            // step removes the injection code the others are stopped on.
            foreach (var thread in process.Threads.Skip(1))
            {
                var (threadRegs, threadXState) = ThreadState.FinalState(thread.Core);
                thread.Tracee.SetRegs(threadRegs);
                thread.Tracee.SetXState(threadXState);
                Native.Interop.Ptrace.SetSigMask(thread.Tid, SavedMask(thread.Core));
            }
            var core = root.LeaderCore;
            var (regs, xstate) = ThreadState.FinalState(core);
            process.Injection.End(regs);
            child.SetXState(xstate);
            Native.Interop.Ptrace.SetSigMask(child.Tid, SavedMask(core));
            if (core.Tc.TaskState == TaskAttributes.TaskStopped)
            {
                LibC.kill(child.Tid, Signals.SIGSTOP);
            }
            foreach (var thread in process.Threads)
            {
                thread.Tracee.Detach();
            }
            log.Write($"{process.Threads.Sum(t => t.Caller.CallCount)} injected system calls");
        }
        catch (Exception e)
        {
            log.Error(e.ToString());
            if (child is not null)
            {
                KillPartial(child, threads);
            }
            host?.Dispose();
            throw Explain(e, root.Pid, log.FilePath);
        }

        if (!options.Detach)
        {
            ChildReaper.Watch(root.Pid);
        }
        log.Phase("Done");
        log.Write($"restored {root.Pid} in {total.Elapsed.TotalMilliseconds:F1} ms");
        return new RestoredProcess
        {
            Id = root.Pid,
            Name = root.Name,
            ImagePath = images.Directory,
            ParentId = ProcStat.Read(root.Pid).PPid,
            Detached = options.Detach,
            ThreadCount = root.Cores.Count,
            MemoryBytes = root.Pagemap.Sum(e => (long)((e.HasNrPages ? e.NrPages : e.CompatNrPages) << Page.Shift)),
            RestoreTime = total.Elapsed,
            ReadTime = readTime,
            MemoryTime = memoryTime,
            LogPath = log.FilePath,
        };
    }

    private static void CheckCanRestore(RestoreSession session, ProcessImages root)
    {
        if (session.Images.Processes.Count > 1)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"The image holds {session.Images.Processes.Count} processes; restoring process trees is not supported yet.",
                session.Images.Directory);
        }
        WaitForZombieToGo(root.Pid, session.Log);
        if (ProcFiles.Exists(root.Pid))
        {
            var holder = ProcStat.Read(root.Pid);
            throw new CheckpointException(CheckpointErrorKind.PidInUse,
                $"PID {root.Pid} is in use by '{holder.Comm}'{(holder.State == 'Z' ? " (a zombie)" : "")}; the restored process needs it.",
                root.Pid,
                $"Stop process {root.Pid}, or restore once it has exited.");
        }
        AddressSpace.CheckMappedFiles(session, root);
        using var pages = new PagesFile(session.Images.Directory, root.PagemapHead, root.Pagemap); // checks its size
    }

    // A process killed by a dump stays a zombie until its parent (often init) reaps it: give that a moment.
    private static void WaitForZombieToGo(int pid, EngineLog log)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        bool waited = false;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                if (ProcStat.Read(pid).State != 'Z')
                {
                    break;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                break; // gone
            }
            if (!waited)
            {
                log.Detail($"PID {pid} is still a zombie; waiting for its parent to reap it");
                waited = true;
            }
            Thread.Sleep(20);
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

    // Each thread is waited for by its own id: a wait for any child could reap children that are not ours to reap.
    private static void KillPartial(Tracee child, IReadOnlyList<Tracee> threads)
    {
        LibC.kill(child.Tid, Signals.SIGKILL);
        foreach (var tid in threads.Select(t => t.Tid).Where(t => t != child.Tid).Append(child.Tid))
        {
            try
            {
                while (true)
                {
                    Wait4.Wait(tid, Wait4.WALL);
                }
            }
            catch (NativeException e) when (e.Errno == Errno.ECHILD)
            {
                // reaped (it was our child, or the host's and went to init)
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
            _ => new CheckpointException(CheckpointErrorKind.RestoreFailed, $"Restore of process {pid} failed: {e.Message}. Nothing was left running.", pid, null, e),
        };
        error.LogPath = logPath;
        return error;
    }
}
