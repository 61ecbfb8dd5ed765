using System.Diagnostics;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Resources.Cgroups;
using CriuPS.Engine.Resources.Cpu;
using CriuPS.Engine.Resources.Credentials;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Resources.Ipc;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Resources.Process;
using CriuPS.Engine.Resources.Signals;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using ThreadState = CriuPS.Engine.Resources.Threads.ThreadState;

namespace CriuPS.Engine.Dump;

/// <summary>
/// One step of a dump: its name (logged with -Verbose and in dump.log as the step begins), the phase it opens
/// (reported with its duration; bench and tests read the phases by name), what it does, the failure point a test may
/// ask for once it is done, and when it applies (always, unless <paramref name="When"/> says otherwise).
/// </summary>
internal sealed record DumpStep(string Name, string? Phase, Action<DumpSteps> Run, string? FailAfter = null, Func<DumpSteps, bool>? When = null);

/// <summary>
/// The order of a checkpoint and of a pre-dump as data: <see cref="Checkpoint"/> and <see cref="PreDump"/> list their
/// steps, each a method below whose comment says why it comes where it does; the steps both take are the same methods.
/// An instance is one dump under way: what its steps opened and froze so far, which a failure releases and removes.
/// Must run on one thread from start to end (ptrace ties a tracee to the thread that seized it).
/// </summary>
internal sealed class DumpSteps
{
    /// <summary>The steps of a checkpoint (a background one included), in the order it takes them.</summary>
    public static readonly IReadOnlyList<DumpStep> Checkpoint =
    [
        new("engine ready", "Checking the process", s => s.WaitForEngine()),
        new("target", null, s => s.CheckTarget()),
        new("areas read ahead", null, s => s.StartReadingAreasAhead(), When: s => !s.options.Background),
        new("tree", null, s => s.CheckTree()),
        new("image", null, s => s.OpenImage()),
        new("areas in hand", null, s => s.AwaitAreasAhead(), When: s => !s.options.Background),
        new("background copy armed ahead", null, s => s.ArmBackgroundCopyAhead(), When: s => s.options.Background),
        new("freeze", "Freezing", s => s.Freeze(), FailurePoint.AfterSeize),
        new("attach", null, s => s.Attach()),
        new("network lock", "Locking the network", s => s.LockNetwork(), When: s => s.options.TcpEstablished),
        new("process state", "Saving process state", s => s.SaveProcessState()),
        new("memory", "Saving memory", s => s.SaveMemory()),
        new("terminals and cpu", "Writing images", s => s.SaveTerminalsAndCpu()),
        new("resume", null, s => s.ResumeBeforeCopy(), When: s => s.background is not null),
        new("background copy", "Saving memory in the background", s => s.CopyInBackground(), When: s => s.background is not null),
        new("images", null, s => s.WriteImages(), FailurePoint.BeforeKill),
        new("commit", null, s => s.Commit()),
        new("write tracking ended", null, s => s.EndWriteTracking()),
        new("end of the tree", null, s => s.EndTree()),
    ];

    /// <summary>The steps of a pre-dump, in the order it takes them.</summary>
    public static readonly IReadOnlyList<DumpStep> PreDump =
    [
        new("engine ready", "Checking the process", s => s.WaitForEngine()),
        new("target", null, s => s.CheckTarget()),
        new("write tracking", null, s => s.CheckWriteTracking()),
        new("tree", null, s => s.CheckTree()),
        new("image", null, s => s.OpenImage()),
        new("freeze", "Freezing", s => s.Freeze(), FailurePoint.AfterSeize),
        new("attach", null, s => s.Attach()),
        new("pages found and writes tracked", "Finding pages and tracking writes", s => s.FindPagesAndTrackWrites()),
        new("resume", null, s => s.ResumeBeforeCopy()),
        new("memory", "Saving memory", s => s.CopyWhileRunning()),
        new("images", "Writing images", s => s.WritePreDumpImages()),
        new("commit", null, s => s.Commit()),
        new("write tracking published", null, s => s.PublishWriteTracking()),
    ];

    private readonly DumpOptions options;
    private readonly EngineLog log;
    private readonly ParentImage? parent;
    private readonly Func<IImageOutput> open;
    private readonly int root;
    private readonly Stopwatch total = Stopwatch.StartNew();
    private readonly Stopwatch frozenTime = new();
    // No garbage collection while the tree stands still: opened as the freeze begins, closed as it ends.
    private NoCollectionWindow? noCollection;
    // Made by the steps, in this order; a step finds those of the steps before it. Null until then: the failure path
    // and the disposal check for them.
    private IImageOutput directory = null!;
    private DumpSession session = null!;
    private IDisposable? quiet;
    private FrozenTree tree = null!;
    private CgroupFreezer? cgroup;
    private BackgroundCopy? background;
    private AreasReadAhead? areasAhead;
    private Task<AreasReadAhead>? readingAreasAhead;
    // The page copy's buffers, allocated and touched before the freeze (PageSink.PrepareAhead).
    private Task? buffersReady;
    // A pre-dump's plans, one per process of the session, and the write tracking armed for the next dump.
    private readonly List<PagePlan> plans = [];
    private readonly List<TrackedProcess> armed = [];

    private DumpSteps(DumpOptions options, IEngineObserver observer, ParentImage? parent, Func<IImageOutput> open)
    {
        this.options = options;
        log = new EngineLog(observer, options.Cancellation);
        this.parent = parent;
        this.open = open;
        root = options.ProcessId;
    }

    /// <summary>
    /// Walks <paramref name="order"/> into the output <paramref name="open"/> makes (an image directory, or a page
    /// server's), on top of <paramref name="parent"/>. Once the image is open, a failure releases the tree exactly as
    /// it was and removes everything written; before, nothing was touched and the failure is thrown as it is.
    /// </summary>
    public static (DumpSession Session, IImageOutput Output) Take(IReadOnlyList<DumpStep> order, DumpOptions options, IEngineObserver observer, ParentImage? parent, Func<IImageOutput> open)
    {
        var steps = new DumpSteps(options, observer, parent, open);
        try
        {
            steps.Walk(order);
            DumpPipeline.Conclude(steps.session, steps.directory, steps.frozenTime, steps.total, options.PreDump ? "pre-dump" : "checkpoint");
            return (steps.session, steps.directory);
        }
        finally
        {
            steps.noCollection?.Dispose(); // a failed dump's tree was let go (or killed) by then
            steps.quiet?.Dispose();
            steps.log.Dispose();
        }
    }

    private void Walk(IReadOnlyList<DumpStep> order)
    {
        try
        {
            foreach (var step in order)
            {
                if (step.When is not null && !step.When(this))
                {
                    continue;
                }
                if (step.Phase is not null)
                {
                    log.Phase(step.Phase);
                }
                log.Detail($"dump step: {step.Name}");
                step.Run(this);
                if (step.FailAfter is not null)
                {
                    FailurePoint.Check(options.FailAt, step.FailAfter);
                }
            }
        }
        catch (Exception e) when (session is not null)
        {
            log.Error(e.ToString());
            session.InetSockets.Resume(log);
            PutBackTerminalData(session);
            tree?.Release(log); // a tree released already (a pre-dump copying, a background copy) has nothing attached left
            background?.Dispose(); // every protection lifted, and said so in the log before it closes
            if (options.PreDump)
            {
                // Writes seen by this pre-dump were counted from it on; without its image they are lost: start over.
                foreach (var process in session.Processes)
                {
                    WriteTracking.End(process.Pid);
                }
            }
            log.Dispose();
            var kept = directory.Abort();
            // Cancelling breaks a page server's connection too: the user asked to stop, whatever broke first.
            throw DumpPipeline.Explain(options.Cancellation.IsCancellationRequested && e is not OperationCanceledException ? new OperationCanceledException(e.Message, e) : e, root, kept);
        }
        finally
        {
            background?.Dispose(); // its handler threads read the processes' memory: before it is closed
            tree?.Dispose(); // the processes' memory, opened as the tree was attached
            cgroup?.Dispose(); // thawed already once the tasks were seized; whatever happened, never left frozen
            session?.UnixSockets?.Dispose(); // our copies of descriptors in flight
        }
    }

    // First, before the target is looked at: a cold session's compiling would otherwise happen while it is frozen.
    private void WaitForEngine()
    {
        EngineWarmup.Wait();
        DumpRehearsal.EnsureDone(log);
    }

    // From outside, before anything is written: a target we cannot dump is refused as it runs.
    private void CheckTarget() => Preflight.CheckTarget(root, options.CallerProcessId);

    // A pre-dump without write tracking could never be followed by a smaller dump: refused before the tree is looked at.
    private void CheckWriteTracking()
    {
        var (tracks, detail) = WriteTracking.SelfTest();
        if (!tracks)
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"Process {root} cannot be pre-dumped: pre-dumps need write tracking, which this machine lacks ({detail}).", root,
                "Take a full checkpoint instead; Test-CheckpointSupport -Name WriteTracking says what is missing.");
        }
    }

    // The whole tree from outside, still before anything is written (a pre-dump refuses now a tree that the final
    // dump would refuse, before anything is copied); for a root below the engine's PID namespace, what numbering its
    // ids for the image needs is built now, not frozen.
    private void CheckTree()
    {
        Preflight.CheckTree(root, options);
        TreePids.PrepareRenumbering(root);
    }

    // Once the checks pass: the output and its log, and the session every later step fills. From here on a failure
    // removes the image.
    private void OpenImage()
    {
        directory = DumpPipeline.WithDigests(open(), options, log);
        log.AttachFile(directory.LogPath);
        log.Write($"CriuPS {typeof(DumpPipeline).Assembly.GetName().Version} {(options.PreDump ? "pre-dumping" : "dumping")} {root} into {directory.Location}{(parent is null ? "" : $" on top of {parent.Directory}")} on {Environment.OSVersion}, in {EngineLog.RunningIn}");
        session = new DumpSession(options, log, directory, parent);
        quiet = ProcStat.Read(root).PPid == Environment.ProcessId ? ChildStopNotifications.Suppress() : null;
    }

    // A final dump, on another thread beside the checks of the tree (40 ms of smaps for 10,000 areas, 30 ms of checks
    // for 32 processes, were one after the other): smaps' walk over every page leaves the frozen window, which reads
    // maps and has smaps read again on a thread of its own (AreasReadAhead). The copy's buffers are made ready beside
    // it for the same reason: their first touch. A dump the checks refuse leaves what was read to the collector.
    private void StartReadingAreasAhead()
    {
        var members = ProcessTree.Discover(root).Where(m => !m.IsZombie).Select(m => m.Pid).ToList();
        buffersReady = PageSink.PrepareAhead(members.Select(ResidentBytes).DefaultIfEmpty(ByteCount.Zero).Max());
        readingAreasAhead = Task.Run(() => AreasReadAhead.Read(members));
    }

    // Last before the freeze: the areas read ahead, in hand.
    private void AwaitAreasAhead() => areasAhead = readingAreasAhead!.GetAwaiter().GetResult();

    // What a process holds in memory now (nothing for one gone meanwhile: the freeze will say so).
    private static ByteCount ResidentBytes(int pid)
    {
        try
        {
            return ProcStat.Read(pid).Resident.Bytes;
        }
        catch (IOException)
        {
            return ByteCount.Zero;
        }
    }

    // -Background: before the freeze, so that what it reads ahead (smaps) is not read while the tree is frozen.
    private void ArmBackgroundCopyAhead()
    {
        background = new BackgroundCopy();
        background.ArmAhead(options, log, frozenTime);
    }

    // Every step after this one reads a tree that stands still.
    private void Freeze()
    {
        noCollection = NoCollectionWindow.Begin(log);
        // Counted from the first task stopped on: the seizing is time the process stands still too.
        frozenTime.Start();
        // -FreezeCgroup: the kernel holds the whole cgroup still while its tasks are seized (thawed once they are).
        cgroup = options.FreezeCgroup is { } frozenCgroup ? CgroupFreezer.Freeze(frozenCgroup, options.FreezeTimeout, log) : null;
        tree = FrozenTree.Freeze(root, options.FreezeTimeout, log, cgroup, areasAhead is { } ahead ? ahead.Layout : null);
    }

    // Once frozen: the layout checked again (a process forked while we froze was not checked before), memory and an
    // injection session opened in every live process.
    private void Attach()
    {
        MappedFileLocks.ReadAtFreeze(session);
        tree.Attach(session, background, areasAhead);
        log.Detail($"tree of {root}: {session.Processes.Count} process(es), {session.Zombies.Count} zombie(s)");
    }

    // -TcpEstablished, before the sockets are read: from now until the restore (or the release) the connections'
    // packets are dropped, so no end sees a reset.
    private void LockNetwork() => session.InetSockets.LockConnections(session.RunId, session.Processes, log);

    // Before memory: a descriptor's file or a System V segment is found here, and the areas of the next step name them.
    private void SaveProcessState()
    {
        var descriptors = FileDescriptors.ProbeAll(session.Processes);
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
            FileDescriptors.Dump(process, session, descriptors[process.Pid]);
        }
        EpollInstances.ResolveClosedTargets(session);
        CgroupDump.Dump(session);
    }

    // Once every file is known (a mapping's file is one of them); the pages copied while frozen, or armed for the
    // background copy.
    private void SaveMemory()
    {
        buffersReady?.GetAwaiter().GetResult();
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
    }

    // The last reads that need the tree frozen: the bytes queued in terminals (put back when the tree goes on) and
    // the CPU the tree ran on.
    private void SaveTerminalsAndCpu()
    {
        PseudoTerminals.SaveQueuedData(session);
        CpuDescription.Dump(session);
    }

    // Everything but the pages is saved (a pre-dump's pages found, a background checkpoint's protected): the tree
    // runs on while they are copied, and is no longer counted as frozen.
    private void ResumeBeforeCopy()
    {
        Resume(session, tree);
        frozenTime.Stop();
        noCollection?.Dispose();
    }

    // -Background, once the tree runs: the protected pages, each copied before the process may write it.
    private void CopyInBackground() => background!.Copy(session);

    // Once every page is saved: the images of the session, all written before the commit.
    private void WriteImages() => ImageSetWriter.Write(session);

    // The image becomes whole at once (renamed into place, or committed to the page server) and the log goes with it.
    private void Commit()
    {
        log.Write($"{tree.InjectedCalls} injected system calls");
        areasAhead?.Confirmed(); // the flags read ahead were those at the freeze
        log.Flush();
        directory.Commit();
        log.Relocate(directory.LogPath);
    }

    // Once committed: the final dump ends write tracking, and closing the userfaultfd lifts every protection.
    private void EndWriteTracking()
    {
        foreach (var process in session.Processes)
        {
            WriteTracking.End(process.Pid);
        }
    }

    // Last, once the image is committed: the tree is held stopped, let go, or killed.
    private void EndTree()
    {
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
        // The no-collection window stays open to the dump's end (Take, see NoCollectionWindow).
    }

    // Pre-dump, while frozen: the pages to save (those written since the parent image), and write tracking armed for
    // the next dump before the tree runs again, so that no write of the copy that follows goes unseen.
    private void FindPagesAndTrackWrites()
    {
        foreach (var process in session.Processes)
        {
            var areas = AddressSpace.PageAreas(process, session);
            var plan = Pages.Plan(process, session, areas, parent, rearm: true);
            armed.Add(WriteTracking.Arm(process, plan, areas, log));
            plans.Add(plan);
        }
    }

    // Pre-dump, once the tree runs: a page written meanwhile may be copied torn, but its write is tracked.
    private void CopyWhileRunning()
    {
        for (int i = 0; i < session.Processes.Count; i++)
        {
            Pages.Copy(session.Processes[i], session, plans[i], whileRunning: true);
        }
    }

    // Pre-dump: CRIU's images of a pre-dump (inventory, pagemaps and pages), before the commit.
    private void WritePreDumpImages() => ImageSetWriter.WritePreDump(session);

    // Pre-dump, once committed: the next dump may count on the writes tracked since this image.
    private void PublishWriteTracking()
    {
        foreach (var tracking in armed)
        {
            WriteTracking.Publish(tracking, session.RunId);
        }
    }

    // The connections and terminals as they were, the processes let go.
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
}
