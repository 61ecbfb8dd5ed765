using System.Diagnostics;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Model;
using CriuPS.Engine.PageServer;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Cgroups;
using CriuPS.Engine.Resources.Cpu;
using CriuPS.Engine.Resources.Credentials;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Resources.Ipc;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Resources.Process;
using CriuPS.Engine.Resources.Signals;
using CriuPS.Engine.Resources.Threads;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;
using ThreadState = CriuPS.Engine.Resources.Threads.ThreadState;

namespace CriuPS.Engine.Dump;

/// <summary>
/// Checkpoint, top to bottom: check the process from outside, freeze it, let each resource module save its
/// part, write the images, then kill the process (or let it go on). Any failure after the freeze releases the
/// process exactly as it was and removes everything written. Must run on one thread from start to end (ptrace
/// ties a tracee to the thread that seized it).
/// </summary>
public static class DumpPipeline
{

    /// <summary>Checkpoints into the image directory of <see cref="DumpOptions.ImagePath"/>.</summary>
    public static CheckpointImage Run(DumpOptions options, IEngineObserver observer)
    {
        BackgroundCopy.CheckOptions(options);
        if (options.PreDump)
        {
            return PreDumpPipeline.Run(options, observer);
        }
        var parent = options.ParentImage is null ? null : ParentImage.Open(options.ParentImage, options.ImagePath);
        var (_, output) = Dump(options, observer, parent, () => BeginImage(options, parent));
        return CheckpointImageReader.Read(output.Location);
    }

    /// <summary>Checkpoints into the image directory of the page server of <see cref="DumpOptions.PageServer"/>.</summary>
    public static RemoteCheckpointImage RunToPageServer(DumpOptions options, IEngineObserver observer)
    {
        var server = options.PageServer ?? throw new ArgumentException("the options name no page server", nameof(options));
        BackgroundCopy.CheckOptions(options);
        if (options.PreDump || options.ParentImage is not null)
        {
            // A pre-dump chain is a chain of directories linked to one another; the protocol carries files only.
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"Process {options.ProcessId}: pre-dumps and images with a parent are written to image directories, not sent to a page server.", options.ProcessId,
                "Pre-dump and checkpoint into directories, then copy them to the other machine together.");
        }
        return SendToPageServer(options, observer, null).Image;
    }

    /// <summary>
    /// Checkpoints (or pre-dumps, with <see cref="DumpOptions.PreDump"/>) into the page server's image directory, on
    /// top of <paramref name="parent"/>, an image sent before to the server that the receiving server links to.
    /// </summary>
    internal static (RemoteCheckpointImage Image, DumpSession Session) SendToPageServer(DumpOptions options, IEngineObserver observer, ParentImage? parent)
    {
        var server = options.PageServer ?? throw new ArgumentException("the options name no page server", nameof(options));
        PageServerImageOutput? sent = null;
        IImageOutput Open() => sent = PageServerImageOutput.Open(server, options.ProcessId, options.Cancellation, options.FailAt);
        var (session, _) = options.PreDump ? PreDumpPipeline.Take(options, observer, parent, Open) : Dump(options, observer, parent, Open);
        var root = session.Processes[0];
        long pages = session.Processes.Sum(p => p.Pagemap.Where(e => !e.IsInParent() && !e.IsLeftBehind()).Sum(e => (long)e.NrPages));
        var image = new RemoteCheckpointImage
        {
            PageServer = server.ToString(),
            Tls = server.Tls,
            Path = sent!.Location,
            RootProcessId = root.Pid,
            Name = root.Stat.Comm,
            ProcessCount = session.TreeOrder.Count,
            ThreadCount = session.Processes.Sum(p => p.Cores.Count),
            MemoryBytes = pages << Page.Shift,
            Pages = pages,
            BytesSent = sent.BytesSent,
            FrozenTime = TimeSpan.FromMicroseconds(session.Stats.FrozenTime),
            TotalTime = TimeSpan.FromMicroseconds(session.Stats.CriupsTotalTime),
            CreatedAt = DateTimeOffset.Now,
            LogPath = sent.LogPath,
        };
        return (image, session);
    }

    private static (DumpSession Session, IImageOutput Output) Dump(DumpOptions options, IEngineObserver observer, ParentImage? parent, Func<IImageOutput> open)
    {
        var total = Stopwatch.StartNew();
        using var log = new EngineLog(observer, options.Cancellation);
        log.Phase("Checking the process");
        EngineWarmup.Wait();
        DumpRehearsal.EnsureDone(log);
        int root = options.ProcessId;
        Preflight.CheckTarget(root);
        Preflight.CheckTree(root, options);
        var directory = WithDigests(open(), options, log);
        log.AttachFile(directory.LogPath);
        log.Write($"CriuPS {typeof(DumpPipeline).Assembly.GetName().Version} dumping {root} into {directory.Location}{(parent is null ? "" : $" on top of {parent.Directory}")} on {Environment.OSVersion}");
        var session = new DumpSession(options, log, directory, parent);
        using var quiet = ProcStat.Read(root).PPid == Environment.ProcessId ? ChildStopNotifications.Suppress() : null;
        var frozenTime = new Stopwatch();
        FrozenTree? tree = null;
        CgroupFreezer? cgroup = null;
        var background = options.Background ? new BackgroundCopy() : null;
        try
        {
            background?.ArmAhead(options, log, frozenTime);
            log.Phase("Freezing");
            // Counted from the first task stopped on: the seizing is time the process stands still too.
            frozenTime.Start();
            // -FreezeCgroup: the kernel holds the whole cgroup still while its tasks are seized (thawed once they are).
            cgroup = options.FreezeCgroup is { } frozenCgroup ? CgroupFreezer.Freeze(frozenCgroup, options.FreezeTimeout, log) : null;
            tree = FrozenTree.Freeze(root, options.FreezeTimeout, log, cgroup);
            FailurePoint.Check(options.FailAt, FailurePoint.AfterSeize);
            tree.Attach(session, background);
            log.Detail($"tree of {root}: {session.Processes.Count} process(es), {session.Zombies.Count} zombie(s)");
            if (options.TcpEstablished)
            {
                // From now until the restore (or the release) the connections' packets are dropped: no end sees a reset.
                log.Phase("Locking the network");
                session.InetSockets.LockConnections(session.RunId, session.Processes, log);
            }

            log.Phase("Saving process state");
            foreach (var process in session.Processes)
            {
                ProcessTree.Dump(process, session, isRoot: process.Pid == root);
                TaskAttributes.Dump(process);
                SignalHandlers.Dump(process);
                foreach (var thread in process.Threads)
                {
                    ThreadState.Dump(process, thread, session);
                }
                FsState.Dump(process, session);
                FileDescriptors.Dump(process, session);
            }
            EpollInstances.ResolveClosedTargets(session);
            CgroupDump.Dump(session);

            log.Phase("Saving memory");
            foreach (var process in session.Processes)
            {
                MmFields.Dump(process, session);
                var areas = AddressSpace.Dump(process, session);
                var plan = Pages.Plan(process, session, areas, parent, rearm: false);
                if (options.LeaveLazyPages)
                {
                    plan.LeaveLazyBehind();
                }
                if (background is null)
                {
                    Pages.Copy(process, session, plan, whileRunning: false);
                    LeftBehindPages.Record(process.Pagemap, plan.LeftBehind);
                    session.Stats.PagesLazy += (ulong)plan.LeftBehind.Sum(r => (long)r.Pages.Value);
                }
                else
                {
                    background.Arm(process, plan, log);
                }
            }
            IpcNamespace.Dump(session); // once every area is recorded: the segments attached are known

            log.Phase("Writing images");
            PseudoTerminals.SaveQueuedData(session);
            CpuDescription.Dump(session);
            if (background is not null)
            {
                // Everything but the protected pages is saved: the tree runs on while they are copied.
                Resume(session, tree);
                frozenTime.Stop();
                log.Phase("Saving memory in the background");
                background.Copy(session);
            }
            ImageSetWriter.Write(session);
            FailurePoint.Check(options.FailAt, FailurePoint.BeforeKill);
            log.Write($"{tree.InjectedCalls} injected system calls");
            options.AreasAhead?.Confirmed(); // a move's: the flags read ahead were those at the freeze
            log.Flush();
            directory.Commit();
            log.Relocate(directory.LogPath);
            // The final dump ends write tracking: closing the userfaultfd lifts every protection.
            foreach (var process in session.Processes)
            {
                WriteTracking.End(process.Pid);
            }

            if (options.HoldStopped)
            {
                log.Phase("Holding the processes stopped");
                // Their connections stay locked and in repair mode: the held tree resumes them, or drops them once the copy runs.
                session.Held = Migration.HeldTree.Of(tree, session.InetSockets, log);
                PseudoTerminals.End(session, putBack: true);
                tree.Release(log, Signals.SIGSTOP);
            }
            else if (options.LeaveRunning)
            {
                if (background is null) // a background checkpoint resumed the processes before it copied their memory
                {
                    Resume(session, tree);
                }
            }
            else
            {
                log.Phase("Killing the processes");
                tree.Kill();
                PseudoTerminals.End(session, putBack: false);
                // Their connections closed silently in repair mode; the lock stays for Restore-Process to lift.
                session.InetSockets.KeepLockForRestore(log);
                if (session.InetSockets.Lock is { } kept)
                {
                    log.Write($"the network lock {kept.Table} stays until the connections are restored");
                }
            }
            frozenTime.Stop();
        }
        catch (Exception e)
        {
            log.Error(e.ToString());
            session.InetSockets.Resume(log);
            PutBackTerminalData(session);
            tree?.Release(log);
            background?.Dispose(); // every protection lifted, and said so in the log before it closes
            log.Dispose();
            var kept = directory.Abort();
            // Cancelling breaks a page server's connection too: the user asked to stop, whatever broke first.
            throw Explain(options.Cancellation.IsCancellationRequested && e is not OperationCanceledException ? new OperationCanceledException(e.Message, e) : e, root, kept);
        }
        finally
        {
            background?.Dispose(); // its handler threads read the processes' memory: before it is closed
            tree?.Dispose(); // the processes' memory, opened as the tree was attached
            cgroup?.Dispose(); // thawed already once the tasks were seized; whatever happened, never left frozen
            session.UnixSockets?.Dispose(); // our copies of descriptors in flight
        }

        Conclude(session, directory, frozenTime, total, "checkpoint");
        return (session, directory);
    }

    /// <summary>
    /// Ends a dump whose image is committed and whose processes are gone or resumed: records the times, writes
    /// stats-dump (which completes the image but is no condition of it) and closes the log.
    /// </summary>
    internal static void Conclude(DumpSession session, IImageOutput directory, Stopwatch frozenTime, Stopwatch total, string what)
    {
        var log = session.Log;
        session.Stats.FrozenTime = (uint)frozenTime.Elapsed.TotalMicroseconds;
        session.Stats.CriupsTotalTime = (ulong)total.Elapsed.TotalMicroseconds;
        log.Phase("Done");
        log.Write($"frozen for {frozenTime.Elapsed.TotalMilliseconds:F1} ms, {total.Elapsed.TotalMilliseconds:F1} ms in all");
        try
        {
            ImageSetWriter.WriteStats(session);
            directory.Finish();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CheckpointException)
        {
            log.Warning($"The {what} is complete in {directory.Location}, but its stats-dump.img could not be written: {e.Message}");
        }
        log.Dispose();
    }

    // -LeaveRunning: the connections and terminals as they were, the processes let go.
    private static void Resume(DumpSession session, FrozenTree tree)
    {
        session.Log.Phase("Resuming the processes");
        session.InetSockets.Resume(session.Log);
        PseudoTerminals.End(session, putBack: true);
        tree.Release(session.Log);
    }

    // A failed dump gives the terminals back the bytes it took from them; a failure here must not hide the first one.
    private static void PutBackTerminalData(DumpSession session)
    {
        try
        {
            PseudoTerminals.End(session, putBack: true);
        }
        catch (Exception e) when (e is NativeException or CheckpointException)
        {
            session.Log.Error($"putting back the bytes queued in terminals: {e.Message}");
        }
    }

    /// <summary>
    /// The output every file of a dump goes through: digested as written, with criups-digests.img written at the
    /// commit, unless a benchmark asked for none (<see cref="DumpOptions.SkipDigests"/>; never for a page server,
    /// which verifies what it receives against them).
    /// </summary>
    internal static IImageOutput WithDigests(IImageOutput output, DumpOptions options, EngineLog log) =>
        options.SkipDigests && options.PageServer is null ? output : new DigestedImageOutput(output, log);

    /// <summary>Creates the image directory of a dump, linked to its parent image (as CRIU links it) when it has one.</summary>
    internal static ImageDirectoryTransaction BeginImage(DumpOptions options, ParentImage? parent)
    {
        var directory = ImageDirectoryTransaction.Begin(options.ImagePath, options.Force);
        try
        {
            parent?.Link(directory.WorkPath, directory.FinalPath);
        }
        catch
        {
            directory.Abort();
            throw;
        }
        return directory;
    }

    internal static CheckpointException Explain(Exception e, int pid, string? logPath)
    {
        var error = e switch
        {
            CheckpointException known => known,
            OperationCanceledException => new CheckpointException(CheckpointErrorKind.Cancelled, $"The checkpoint of process {pid} was cancelled; the process was left running as it was.", pid, null, e),
            TraceeGoneException gone => new CheckpointException(CheckpointErrorKind.ProcessExited, $"Process {pid} ended while it was being checkpointed ({gone.Status}).", pid, null, e),
            ImageFormatException format => new CheckpointException(CheckpointErrorKind.DumpFailed, format.Message, format.Path, null, e),
            _ when AccessFailures.Explain(e, pid) is { } denied => denied,
            _ => new CheckpointException(CheckpointErrorKind.DumpFailed, $"Checkpoint of process {pid} failed: {e.Message}. The process was left running as it was.", pid, null, e),
        };
        error.LogPath = logPath;
        return error;
    }
}
