using System.Diagnostics;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Digests;
using CriuPS.Engine.Lazy;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Resources.Cgroups;
using CriuPS.Engine.Resources.Credentials;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Resources.Ipc;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Resources.Mounts;
using CriuPS.Engine.Resources.Network;
using CriuPS.Engine.Resources.Process;
using CriuPS.Engine.Resources.Signals;
using CriuPS.Engine.Resources.Threads;
using CriuPS.Native.Arch;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;
using Tmds.Linux;
using ThreadState = CriuPS.Engine.Resources.Threads.ThreadState;

namespace CriuPS.Engine.Restore;

/// <summary>
/// One step of a restore: its name (logged with -Verbose and in restore.log as the step begins), the phase it opens
/// (reported with its duration), what it does, and the failure point a test may ask for once it is done.
/// </summary>
internal sealed record RestoreStep(string Name, string? Phase, Action<RestoreSteps> Run, string? FailAfter = null);

/// <summary>
/// The order of a restore as data: <see cref="Order"/> lists the steps that verify, read and check the images and then
/// turn them into a running tree, each a method below whose comment says why it comes where it does. An instance is
/// one restore under way: what the steps made so far, which <see cref="Undo"/> kills and removes when a step fails.
/// </summary>
internal sealed class RestoreSteps : IDisposable
{
    private static readonly ByteCount InjectionAreaSize = ByteCount.FromMiB(1);

    /// <summary>The steps, in the order a restore takes them.</summary>
    public static readonly IReadOnlyList<RestoreStep> Order =
    [
        new("verification", "Verifying images", s => s.VerifyImages()),
        new("images", "Reading images", s => s.ReadImages()),
        new("checks", null, s => s.Check()),
        new("network namespace", null, s => s.PrepareNetwork()),
        new("files of the engine", null, s => s.OpenFilesInEngine(), FailurePoint.AfterSockets),
        new("processes", "Creating the processes", s => s.CreateProcesses(), FailurePoint.AfterCreate),
        new("namespaces", null, s => s.JoinNamespaces()),
        new("memory", "Restoring memory", s => s.RestoreMemory(), FailurePoint.AfterMemory),
        new("files", "Restoring files", s => s.RestoreFiles(), FailurePoint.AfterFiles),
        new("signal handlers and attributes", "Restoring process state", s => s.RestoreAttributes()),
        new("fs state", null, s => s.RestoreFsState()),
        new("threads and credentials", null, s => s.RestoreThreads()),
        new("file owners", null, s => s.RestoreFileOwners(), FailurePoint.AfterCredentials),
        new("cgroups", null, s => s.PlaceInCgroups(), FailurePoint.AfterCgroups),
        new("page digests", null, s => s.AwaitPageDigests()),
        new("final state", "Resuming", s => s.SetFinalStates(), FailurePoint.BeforeResume),
        new("release", null, s => s.Release()),
    ];

    private readonly Stopwatch total;
    // Made by the step "images"; null until then (the disposal checks).
    private RestoreSession session = null!;
    // Set once every check passed: a step that fails after that has made something to undo.
    private bool checksPassed;
    // The threads that resume at a system call instruction, which the release waits to see past it.
    private readonly ResumedCalls resumedCalls = new();
    // No garbage collection from the restore's start to the release (see NoCollectionWindow).
    private NoCollectionWindow? noCollection;

    public RestoreSteps(RestoreOptions options, EngineLog log, Stopwatch total)
    {
        Options = options;
        Log = log;
        this.total = total;
    }

    private RestoreOptions Options { get; }

    private EngineLog Log { get; }

    private ImageSet Images => session.Images;

    /// <summary>The state every step fills, from the step "images" on.</summary>
    public RestoreSession Session => session;

    /// <summary>What the steps "verification" and "page digests" verified, and how long it took.</summary>
    public ChainVerification Verified { get; private set; } = null!;

    // The pages files' blocks, checked against their digests beside the steps that create and fill the processes;
    // null for a lazy restore, which checks each block as it reads it.
    private Task<ChainVerification>? pageDigests;

    /// <summary>The host the tree is forked from, while it is still needed.</summary>
    private RestoreHost? Host { get; set; }

    /// <summary>The init of a new PID namespace (-NewPidNamespace), which lives until the tree runs.</summary>
    public RestoreHost? NamespaceInit { get; private set; }

    /// <summary>Every task made so far, in the order made: a failure kills them all.</summary>
    private List<Tracee> Created { get; } = [];

    /// <summary>The processes' memories, opened as they were made, closed at the end whatever happens.</summary>
    private List<ProcessMemory> Memories { get; } = [];

    public List<RestoringProcess> Processes { get; private set; } = [];

    public TimeSpan ReadTime { get; private set; }

    public TimeSpan MemoryTime { get; private set; }

    public IReadOnlyList<string> Cgroups { get; private set; } = [];

    /// <summary>
    /// Walks <see cref="Order"/>, naming each step as it begins. Once the checks passed, a failure undoes what the
    /// steps made and is explained; before, nothing was created and it is thrown as it is.
    /// </summary>
    public void RunAll()
    {
        try
        {
            foreach (var step in Order)
            {
                if (step.Phase is not null)
                {
                    Log.Phase(step.Phase);
                }
                Log.Detail($"restore step: {step.Name}");
                step.Run(this);
                if (step.FailAfter is not null)
                {
                    FailurePoint.Check(Options.FailAt, step.FailAfter);
                }
            }
        }
        catch (Exception e) when (checksPassed)
        {
            Log.Error(e.ToString());
            Undo();
            if (e is not CheckpointException { Kind: CheckpointErrorKind.ImageCorrupt } && DamagedPages() is { } damaged)
            {
                damaged.ThrowIfDamaged();
            }
            // A page source lost mid-way is the cause, whatever the restore tripped over when the transfer killed the process.
            var cause = session.Lazy?.Status.Error is { Kind: not CheckpointErrorKind.Cancelled } lost ? lost : e;
            throw RestorePipeline.Explain(cause, Images.Root.Pid, Log.FilePath);
        }
        finally
        {
            noCollection?.Dispose();
            // Never left reading the image after the restore returned, whatever it returned.
            try
            {
                pageDigests?.Wait();
            }
            catch (AggregateException)
            {
                // a failure the restore already reported, or one that came after the restore failed for another reason
            }
            foreach (var memory in Memories)
            {
                memory.Dispose();
            }
        }
    }

    /// <summary>
    /// After a step failed: what the steps that ran made, undone. The tasks of "processes" (with the threads that
    /// "threads and credentials" added) go first, as the rest waits for them: a cgroup with members cannot be
    /// removed. Then the rest, in reverse order of the steps that made it.
    /// </summary>
    private void Undo()
    {
        // "processes": the tree, its host and the init of its new PID namespace.
        KillPartial(Created);
        Host?.Dispose();
        NamespaceInit?.Dispose(); // its namespace dies with it
        // "namespaces": the cgroups that were missing, once their members are gone.
        CgroupRestore.RemoveCreated(session);
        // "files of the engine": a lazy restore's page transfer.
        session.Lazy?.Abort($"The restore of process {Images.Root.Pid} failed.");
        // "network namespace": the veth devices made for it.
        session.Network?.Abandon(Log);
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

    /// <summary>The session, with every file the engine opened for the tree; the transfer of a lazy restore lives on.</summary>
    public void Dispose() => session?.Dispose();

    // First, before anything is read into the restore, let alone created: a damaged image is refused naming the file.
    // The pages files are checked for their size here and block by block on another core while the processes are
    // made and filled (a tenth of a second per GiB, the one part of a restore that is not the kernel's work); the
    // step "page digests" waits for that check before anything runs, and a damaged block fails the restore there,
    // which kills what was made.
    // The engine's warm-up is not awaited: a restore has no frozen window to keep it out of, and waiting for it left
    // this thread idle while the warm-up ran on the other core (what the verification needs first, the image types
    // and the messages' shapes, it builds itself or waits for under their initializers). Cold restores of 64 threads,
    // 8 pairs interleaved: median 217 ms waiting, 207 ms not.
    private void VerifyImages()
    {
        noCollection = NoCollectionWindow.Begin(Log);
        Verified = ImageVerifier.VerifyChain(Options.ImagePath, deferPages: true);
        Verified.ThrowIfDamaged();
        if (!Options.LazyPages)
        {
            var sizesChecked = Verified;
            pageDigests = Task.Run(() => ImageVerifier.VerifyDeferredPages(sizesChecked));
        }
    }

    private void AwaitPageDigests()
    {
        if (pageDigests is null)
        {
            return;
        }
        var clock = Stopwatch.StartNew();
        Verified = pageDigests.GetAwaiter().GetResult();
        Log.Detail($"page digests checked beside the restore; waited {clock.Elapsed.TotalMilliseconds:F1} ms for them (verification in all {Verified.Elapsed.TotalMilliseconds:F1} ms)");
        Verified.ThrowIfDamaged();
    }

    // After a failure: damaged pages are the cause, whatever the restore tripped over with their contents loaded.
    private ChainVerification? DamagedPages()
    {
        try
        {
            var verified = pageDigests?.GetAwaiter().GetResult();
            return verified?.Problems.Any() == true ? verified : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or AggregateException)
        {
            return null; // the image went away mid-check: the restore's own error says more
        }
    }

    // Once verified: the images read, restore.log opened beside them (with what was verified), and the session
    // every later step fills.
    private void ReadImages()
    {
        var images = ImageSet.Read(Options.ImagePath);
        RestoreLog.AttachLog(Log, images.Directory, Options);
        Log.Write($"CriuPS {typeof(RestorePipeline).Assembly.GetName().Version} restoring from {images.Directory}, in {EngineLog.RunningIn}");
        RestoreLog.LogVerification(Log, Verified, Options.LazyPages);
        session = new RestoreSession(Options, Log, images)
        {
            PagesVerifiedOnRead = Options.LazyPages ? PageVerifier.For(Verified) : null,
        };
    }

    // Before anything is created: what this machine, the PIDs in use or a resource module refuses fails the restore
    // with nothing to undo.
    private void Check()
    {
        RestoreChecks.CheckCanRestore(session);
        checksPassed = true;
    }

    // The first thing made: the sockets are made inside the tree's network namespace, and the next step's files
    // include them.
    private void PrepareNetwork() => session.Network = TreeNetwork.Prepare(session);

    // Before any process exists: the engine opens every file and socket the tree needs (and takes the OFD locks), so
    // that a missing file fails the restore before anything was created. A lazy restore's page source opens here too.
    private void OpenFilesInEngine()
    {
        FileDescriptors.OpenForRestore(session);
        FileLocks.TakeOnDescriptions(session);
        ReadTime = total.Elapsed;
        if (Options.LazyPages)
        {
            session.Lazy = new LazyTransfer(LazyPageSources.Open(session), Log, Images.Root.Pid, Options.FailAt);
        }
    }

    // Every resource below is restored inside a process: they must exist first, with their saved PIDs, sessions and
    // groups, and with nothing of the host's descriptors left.
    private void CreateProcesses()
    {
        noCollection = noCollection!.Renew();
        int enginePidfd = EnginePidfdNumber(Images);
        if (Options.NewPidNamespace)
        {
            Host = NamespaceInit = RestoreHost.StartNamespaceInit(Images.Root.Pid, enginePidfd, childOfCaller: !Options.Detach, InjectionAreaSize, Log);
            session.Pids = new RestoredPids(NamespaceInit.Pid, enginePidfd);
        }
        else
        {
            Host = Options.HostProcessId is int given ? RestoreHost.Seize(given, Log) : RestoreHost.Start(Options.ShellJob, Log);
        }
        var shells = ProcessTree.Create(session, Host, InjectionAreaSize, childOfCaller: !Options.Detach, Made, enginePidfd);
        if (NamespaceInit is null)
        {
            Host.Dispose(); // the tree is all we need; with -Detach its root now belongs to init
        }
        Host = null;
        Memories.AddRange(shells.Select(s => s.Memory));
        Processes = shells.Where(s => !s.IsZombie)
            .Select(s => new RestoringProcess(Images.Processes.First(p => p.Pid == s.Pid), s.Leader, s.Memory, s.Injection))
            .ToList();
        Log.Detail($"created {shells.Count} process(es), {Images.Zombies.Count} of them zombies");
        FileDescriptors.OpenOnceProcessesExist(session);
        foreach (var process in OnePerTable(Processes, p => p.Images.Ids.FilesId))
        {
            CloseInherited(process);
        }
    }

    // The tree's tasks, the root first: a failure kills them; the root is the caller's to reap when it is its child.
    private void Made(Tracee task)
    {
        Created.Add(task);
        if (Created.Count == 1 && !Options.Detach && NamespaceInit is null)
        {
            Options.RootCreated?.Invoke(task.Tid);
        }
    }

    // Before memory and files, which a mount namespace of their own names in its view (a container's root); its
    // sysfs is of the network namespace, its cgroup binds of the cgroups made here, setns through the engine's /proc.
    private void JoinNamespaces()
    {
        // Before memory: each process attaches its System V segments again, which must exist in its namespace.
        IpcNamespace.Restore(session, Processes);
        foreach (var process in Processes)
        {
            session.Network!.Join(session, process); // setns needs CAP_SYS_ADMIN, which the credentials may drop
        }
        UtsNamespace.Restore(session, Processes); // its setns goes through the engine's /proc too
        TimeNamespaces.Restore(session, Processes); // as UTS; and while every process is single-threaded (setns needs it)
        CgroupRestore.MakeMissing(session);
        MountNamespace.Restore(session, Processes);
        FileDescriptors.OpenInMountNamespace(session);
    }

    // Before the files: a descriptor may be of a mapping's file, and memfd seals forbid the writes of the pages.
    private void RestoreMemory()
    {
        var memoryClock = Stopwatch.StartNew();
        foreach (var process in Processes)
        {
            AddressSpace.Restore(session, process);
            MmFields.Restore(session, process);
        }
        IpcNamespace.Finish(session);
        Memfds.ApplyLateSeals(session);
        MemoryTime = memoryClock.Elapsed + ForkedMemory.Elapsed(session); // a tree's private memory came in as it was forked
    }

    // Once each process has its namespaces and memory: its descriptors (sockets included), queues and file locks.
    private void RestoreFiles()
    {
        foreach (var process in OnePerTable(Processes, p => p.Images.Ids.FilesId))
        {
            FileDescriptors.Restore(session, process);
            PosixQueues.Install(session, process);
        }
        foreach (var process in Processes)
        {
            FileLocks.TakeInProcess(session, process);
        }
    }

    // Before the fs state and the credentials, which may take away what these need.
    private void RestoreAttributes()
    {
        foreach (var process in Processes)
        {
            SignalHandlers.Restore(process);
            TaskAttributes.Restore(session, process);
        }
    }

    // After the attributes (the login uid is written through /proc, which a new root may not have) and before the
    // credentials (chroot needs CAP_SYS_CHROOT).
    private void RestoreFsState()
    {
        foreach (var process in OnePerTable(Processes, p => p.Images.Ids.FsId))
        {
            FsState.Restore(session, process);
        }
    }

    // The threads, then each thread's state and credentials; seccomp last, as a filter may forbid the calls above.
    private void RestoreThreads()
    {
        foreach (var process in Processes)
        {
            ThreadGroup.CreateThreads(process);
            Created.AddRange(process.Threads.Skip(1).Select(t => t.Tracee));
            PosixTimers.Restore(process); // after the threads: a timer may signal one of them
            // Every thread was cloned from the leader and has its credentials until its own are set below: the
            // leader's status read once stands for each (a read per thread cost 60 us, 4 ms for 64 threads).
            var asCreated = ProcStatus.ReadThread(process.HostPid, process.Threads[0].Tid);
            ThreadState.Restore(process);
            foreach (var thread in process.Threads)
            {
                var creds = thread.Core.ThreadCore.Creds;
                if (creds is not null && Creds.Differ(creds, asCreated))
                {
                    Creds.Restore(creds, asCreated, thread.Caller, process.Injection.Scratch);
                }
                // A change of credentials clears the parent-death signal and resets the dumpable flag.
                ThreadState.RestoreParentDeathSignal(thread.Core, thread.Caller);
            }
            MmFields.RestoreDumpable(process);
            foreach (var thread in process.Threads)
            {
                Seccomp.Restore(session, process, thread.Caller, thread.Core.ThreadCore);
            }
        }
    }

    // Once every process, group and thread exists: an owner may name any of them.
    private void RestoreFileOwners() => FileDescriptors.RestoreOwners(session);

    // Every thread exists and none has run: each goes into its own cgroups.
    private void PlaceInCgroups()
    {
        CgroupRestore.Place(session, Processes);
        Cgroups = CgroupRestore.Where(session.Pids.Host(Images.Root.Pid));
    }

    // Every process is whole: the engine's pidfd goes, each thread gets its final registers, the network lock goes
    // and the connections leave repair mode; nothing has run yet.
    private void SetFinalStates()
    {
        if (session.Pids.EnginePidfd is int inherited)
        {
            foreach (var process in OnePerTable(Processes, p => p.Images.Ids.FilesId))
            {
                process.Caller.Checked("close of the engine's pidfd", RemoteCall.Close(inherited));
            }
        }
        foreach (var process in Processes)
        {
            SetFinalState(process, resumedCalls);
        }
        session.InetSockets?.Resume();
    }

    // Last: the tree runs.
    private void Release()
    {
        // Its /proc mounted and let go before the tree runs: the tree must see the namespace's PIDs in /proc.
        if (NamespaceInit is not null && session.Pids.EnginePidfd is int pidfd)
        {
            NamespaceInit.Release(pidfd);
        }
        // Children first: a parent that runs first could already signal or wait for them.
        foreach (var process in Enumerable.Reverse(Processes))
        {
            foreach (var thread in process.Threads)
            {
                thread.Tracee.Detach();
            }
        }
        resumedCalls.WaitUntilPast(Log);
        noCollection?.Dispose();
        Log.Write($"{Processes.Sum(p => p.Threads.Sum(t => t.Caller.CallCount))} injected system calls");
        IpcNamespace.Keep(session);
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
    private void CloseInherited(RestoringProcess process)
    {
        if (session.Pids.EnginePidfd is int kept)
        {
            process.Caller.Checked("close_range", RemoteCall.CloseRange(0, (uint)(kept - 1)));
            process.Caller.Checked("close_range", RemoteCall.CloseRange((uint)(kept + 1), uint.MaxValue));
            return;
        }
        process.Caller.Checked("close_range", RemoteCall.CloseRange(0, uint.MaxValue));
    }

    /// <summary>The first process of each group sharing a kernel object (an fd table, fs information).</summary>
    private static IEnumerable<RestoringProcess> OnePerTable(IEnumerable<RestoringProcess> processes, Func<RestoringProcess, uint> table) =>
        processes.GroupBy(table).Select(g => g.First());

    /// <summary>
    /// Gives every thread its final registers, FPU state and signal mask while all are still stopped; the leader
    /// last, since its final step removes the injection code the others are stopped on.
    /// </summary>
    private static void SetFinalState(RestoringProcess process, ResumedCalls resumedCalls)
    {
        var arch = IArchitecture.Current;
        var finals = ThreadState.FinalStates(process.Threads.Select(t => (t.Core, t.Caller)).ToList(), process.Injection.Scratch);
        foreach (var (thread, (threadRegs, threadXState)) in process.Threads.Zip(finals).Skip(1))
        {
            resumedCalls.Note(process.HostPid, thread.Tid, arch.InstructionPointerOf(threadRegs), process.Memory);
            thread.Tracee.SetRegs(threadRegs);
            thread.Tracee.SetXState(threadXState);
            Native.Interop.Ptrace.SetSigMask(thread.Tid, SavedMask(thread.Core));
        }
        // Threads[0] is the leader, restored from the leader's core.
        var core = process.Images.LeaderCore;
        var (regs, xstate) = finals[0];
        resumedCalls.Note(process.HostPid, process.HostPid, arch.InstructionPointerOf(regs), process.Memory);
        process.Injection.End(regs);
        process.Leader.SetXState(xstate);
        Native.Interop.Ptrace.SetSigMask(process.HostPid, SavedMask(core));
        if (core.Tc.TaskState == TaskAttributes.TaskStopped)
        {
            Kill.Send(process.HostPid, Signals.SIGSTOP);
        }
    }

    private static ulong SavedMask(Images.Proto.CoreEntry core) =>
        core.ThreadCore.HasBlkSigset ? core.ThreadCore.BlkSigset : core.Tc.BlkSigset;
}
