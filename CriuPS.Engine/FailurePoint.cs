namespace CriuPS.Engine;

/// <summary>
/// Named points where a test can make a dump or a restore fail on purpose (CRIUPS_FAIL_AT, read into
/// DumpOptions.FailAt and RestoreOptions.FailAt), to prove that a failed dump leaves the process running exactly as
/// before and nothing in the image path, and that a failed restore leaves nothing alive, every PID free and the image
/// as it was. One list for both pipelines: a point that both pass (mid-memory) fails whichever runs.
/// </summary>
internal static class FailurePoint
{
    /// <summary>Dumps and pre-dumps: the tree is frozen, nothing read yet.</summary>
    public const string AfterSeize = "after-seize";

    /// <summary>
    /// Move-Process -PostCopy: the source's page server breaks the connection once it has sent its first pages, as a
    /// cut link would, while the copy on the destination runs.
    /// </summary>
    public const string PostCopyLinkCut = "postcopy-link-cut";

    /// <summary>
    /// Lazy restores: the transfer serves the faults of the running process but streams nothing in the background,
    /// so that its pages stay missing until it touches them: a test's way to end a lazily restored process while it
    /// certainly has pages to pull (a point that holds back rather than throws; lazy-pull-held:PID for the restore
    /// of that process only).
    /// </summary>
    public const string LazyPullHeld = "lazy-pull-held";

    /// <summary>Dumps: every image file is written but not yet moved into place; the processes are not yet killed (or released).</summary>
    public const string BeforeKill = "before-kill";

    /// <summary>Dumps, pre-dumps and restores: the first batch of pages is copied out of (or read into) a process.</summary>
    public const string MidMemory = "mid-memory";

    /// <summary>
    /// Restores: every file the processes need is open in the engine, its sockets rebuilt (the network lock engaged)
    /// and OFD locks taken; no process exists yet.
    /// </summary>
    public const string AfterSockets = "after-sockets";

    /// <summary>Restores: every process of the tree exists with its PID, session and group; zombies have exited.</summary>
    public const string AfterCreate = "after-create";

    /// <summary>Restores: every process has its memory and mm fields (lazy pages registered for the transfer).</summary>
    public const string AfterMemory = "after-memory";

    /// <summary>Restores: every process has its descriptors, sockets included, and its file locks.</summary>
    public const string AfterFiles = "after-files";

    /// <summary>Restores: every process has its threads with their credentials, and the rest of its state (seccomp filters last).</summary>
    public const string AfterCredentials = "after-credentials";

    /// <summary>Restores: every process and thread is in its saved cgroups (those that were missing made again).</summary>
    public const string AfterCgroups = "after-cgroups";

    /// <summary>Restores: everything is done (final registers set, network lock lifted) but the detach that lets the processes run.</summary>
    public const string BeforeResume = "before-resume";

    /// <summary>
    /// Dumps of a tree holding a POSIX message queue: its messages were received (to be saved) and not yet sent back.
    /// Not in <see cref="Dump"/>: only such a tree passes it.
    /// </summary>
    public const string MqueueRead = "mqueue-read";

    /// <summary>
    /// Dumps to a page server: one byte of the first pages file is flipped on its way, after it was digested, as a
    /// faulty network or memory would: the server must find it and refuse the image (a point that does harm rather
    /// than throw, tested by Tests/Pester/Integrity.Tests.ps1).
    /// </summary>
    public const string DamageInFlight = "damage-in-flight";

    /// <summary>The points a dump passes, in order.</summary>
    public static readonly IReadOnlyList<string> Dump = new[] { AfterSeize, MidMemory, BeforeKill };

    /// <summary>The points a restore passes, in order.</summary>
    public static readonly IReadOnlyList<string> Restore = new[] { AfterSockets, AfterCreate, MidMemory, AfterMemory, AfterFiles, AfterCredentials, AfterCgroups, BeforeResume };

    public static void Check(string? configured, string point)
    {
        if (Is(configured, point))
        {
            throw new InjectedFailureException(point);
        }
    }

    /// <summary>Whether the test asked for <paramref name="point"/>, for points that do harm rather than throw.</summary>
    public static bool Is(string? configured, string point) => string.Equals(configured, point, StringComparison.Ordinal);

    /// <summary>
    /// Whether the test asked for <paramref name="point"/> for every process, or for <paramref name="processId"/>
    /// alone (POINT:PID: a move's rehearsal restores a sleep of its own first, which must go through).
    /// </summary>
    public static bool IsFor(string? configured, string point, int processId) =>
        Is(configured, point) || string.Equals(configured, $"{point}:{processId}", StringComparison.Ordinal);
}

/// <summary>The failure a test asked for.</summary>
internal sealed class InjectedFailureException : Exception
{
    public InjectedFailureException(string point)
        : base($"injected test failure at '{point}'")
    {
    }
}
