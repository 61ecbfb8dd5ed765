namespace CriuPS.Engine.Dump;

/// <summary>What to checkpoint and how.</summary>
public sealed class DumpOptions
{
    /// <summary>The root of the process tree to save.</summary>
    public required int ProcessId { get; init; }

    /// <summary>The image directory to create (it must not exist, or be empty, or <see cref="Force"/> is set); unused with <see cref="PageServer"/>.</summary>
    public string ImagePath { get; init; } = "";

    /// <summary>Send every image file to this page server instead, into its image directory (see DumpPipeline.RunToPageServer).</summary>
    public PageServer.PageServerEndpoint? PageServer { get; init; }

    /// <summary>Keep the process running after a successful dump (by default it is killed, as CRIU does).</summary>
    public bool LeaveRunning { get; init; }

    /// <summary>
    /// With <see cref="LeaveRunning"/>: freeze only to save everything but memory and to write-protect it, copy the
    /// memory while the process runs again, saving each page it writes first (see BackgroundSnapshot). The image is
    /// the process at the freeze, as a frozen checkpoint's.
    /// </summary>
    public bool Background { get; init; }

    /// <summary>
    /// Save memory only, while the process keeps running, and track its writes from then on, so that a later dump
    /// given this image as <see cref="ParentImage"/> saves only what changed (CRIU's pre-dump). The process is never ended.
    /// </summary>
    public bool PreDump { get; init; }

    /// <summary>
    /// An earlier pre-dump (or dump) of the same processes: pages not written since it was taken are left to it, and
    /// the new image links to it (a relative `parent` symlink, as CRIU's --prev-images-dir).
    /// </summary>
    public string? ParentImage { get; init; }

    /// <summary>Allow a process attached to a terminal; the terminal is reconnected on restore with the same switch.</summary>
    public bool ShellJob { get; init; }

    /// <summary>Save established TCP connections (CRIU's --tcp-established), with the network locked meanwhile.</summary>
    public bool TcpEstablished { get; init; }

    /// <summary>
    /// Save TCP listeners that have connections not yet accepted, dropping those connections (CRIU's --skip-in-flight);
    /// without it such a listener is refused.
    /// </summary>
    public bool SkipInFlight { get; init; }

    /// <summary>Replace an existing non-empty image directory.</summary>
    public bool Force { get; init; }

    /// <summary>
    /// The most disk space (in bytes) a deleted file the process still has open or mapped may take: its contents are
    /// saved in the image (a ghost file, as CRIU's --ghost-limit), and a larger one is refused before anything is frozen.
    /// </summary>
    public long GhostFileLimit { get; init; } = DefaultGhostFileLimit;

    /// <summary>
    /// Keys of System V objects of the host's IPC namespace saved with the tree besides the segments it attaches:
    /// semaphore sets and message queues leave no trace of who uses them, so the user names them (CRIU saves none).
    /// </summary>
    public IReadOnlyList<int> IpcKeys { get; init; } = [];

    /// <summary>CRIU's default ghost limit: 1 MiB.</summary>
    public const long DefaultGhostFileLimit = 1 << 20;

    /// <summary>
    /// How long a thread may take to stop when frozen (CRIU's --timeout). A thread sleeping uninterruptibly in the
    /// kernel (a hung network file system, a vfork parent whose child is stopped) cannot stop before it wakes.
    /// </summary>
    public TimeSpan FreezeTimeout { get; init; } = DefaultFreezeTimeout;

    /// <summary>CRIU's default: 10 seconds.</summary>
    public static readonly TimeSpan DefaultFreezeTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A cgroup holding exactly the tree (a v1 freezer cgroup, or a cgroup v2 one) to freeze while its tasks are seized
    /// (CRIU's --freeze-cgroup): nothing in it forks or exits meanwhile, so a tree that changes fast is caught whole.
    /// </summary>
    public string? FreezeCgroup { get; init; }

    /// <summary>Use /proc/PID/pagemap even where PAGEMAP_SCAN exists (to exercise the fallback).</summary>
    public bool ForcePagemapFile { get; init; }

    /// <summary>Cancels the dump (the process is released unharmed) at the next phase or batch of pages.</summary>
    public CancellationToken Cancellation { get; init; }

    /// <summary>
    /// Benchmark knob (CRIUPS_BENCH_NO_DIGESTS): write no criups-digests.img, so that a benchmark can measure what
    /// the digests cost. The image is then restored unverified, as CRIU's are. Image directories only: a page server
    /// requires the digests, and a dump sent to one always has them.
    /// </summary>
    public bool SkipDigests { get; init; }

    /// <summary>
    /// A move's final dump: once the image is committed, the processes are left stopped (SIGSTOP queued before they
    /// are let go) instead of killed, so that they can be ended once the other machine runs them, or resumed where
    /// they are when it does not (<see cref="Migration.HeldTree"/>).
    /// </summary>
    internal bool HoldStopped { get; init; }

    /// <summary>
    /// With <see cref="HoldStopped"/>, a post-copy move's final dump: the pages a lazy restore can fill are listed in
    /// the pagemap but not copied (<see cref="Resources.Memory.PagePlan.LeaveLazyBehind"/>); the held processes'
    /// page server sends them to the restored copy.
    /// </summary>
    internal bool LeaveLazyPages { get; init; }

    /// <summary>
    /// The process the checkpoint is asked from when the engine runs in a process of its own (criups-engine): the
    /// PowerShell session, refused as a target as the engine itself is.
    /// </summary>
    public int? CallerProcessId { get; init; }

    /// <summary>Test hook: fail on purpose at this point (see <see cref="FailurePoint"/>) to prove the target survives.</summary>
    public string? FailAt { get; init; }
}
