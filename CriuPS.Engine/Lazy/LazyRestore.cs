using CriuPS.Engine.Errors;

namespace CriuPS.Engine.Lazy;

/// <summary>
/// The pages of a process restored with -LazyPages, as they arrive: counters that move while the process runs,
/// and the outcome once the transfer ends. The transfer runs in this (PowerShell) process, which must stay until it
/// completes: if it ends first, the restored process is killed.
/// </summary>
public sealed class LazyRestore
{
    private readonly ManualResetEventSlim finished = new();
    private long pagesTotal;
    private long pagesDone;
    private long pagesOnFault;
    private long pagesInBackground;
    private long faults;
    private long faultTicks;
    private long backgroundTicks;
    private volatile LazyRestoreState state = LazyRestoreState.Running;

    internal LazyRestore(int processId, string source, string? logPath)
    {
        ProcessId = processId;
        Source = source;
        LogPath = logPath;
    }

    /// <summary>The restored process (the root of the restored tree).</summary>
    public int ProcessId { get; }

    /// <summary>Where the pages come from: the image directory, or a page server.</summary>
    public string Source { get; }

    public LazyRestoreState State => state;

    /// <summary>Pages to deliver: the lazy pages of the image, plus those of children forked during the transfer.</summary>
    public long PagesTotal => Interlocked.Read(ref pagesTotal);

    /// <summary>Pages dealt with: delivered, or no longer needed because the process unmapped or discarded them.</summary>
    public long PagesDone => Interlocked.Read(ref pagesDone);

    /// <summary>Pages delivered because the process touched them.</summary>
    public long PagesOnFault => Interlocked.Read(ref pagesOnFault);

    /// <summary>Pages delivered by the background transfer.</summary>
    public long PagesInBackground => Interlocked.Read(ref pagesInBackground);

    /// <summary>Page faults served (including faults on never-saved pages, answered with zeros).</summary>
    public long Faults => Interlocked.Read(ref faults);

    public double PercentDone => PagesTotal == 0 ? 100 : Math.Round(100.0 * PagesDone / PagesTotal, 1);

    /// <summary>When the process started to run.</summary>
    public DateTime Started { get; private set; } = DateTime.Now;

    /// <summary>When the transfer ended, one way or another.</summary>
    public DateTime? Finished { get; private set; }

    public TimeSpan Elapsed => (Finished ?? DateTime.Now) - Started;

    /// <summary>Time spent serving faults (reading their pages and placing them).</summary>
    public TimeSpan FaultTime => TimeSpan.FromTicks(Interlocked.Read(ref faultTicks));

    /// <summary>Time spent on background pages.</summary>
    public TimeSpan BackgroundTime => TimeSpan.FromTicks(Interlocked.Read(ref backgroundTicks));

    /// <summary>Why the transfer failed (the process was killed), when it did.</summary>
    public CheckpointException? Error { get; private set; }

    /// <summary>restore.log, where the transfer logs its end.</summary>
    public string? LogPath { get; }

    /// <summary>Whether the transfer has ended.</summary>
    public bool IsFinished => finished.IsSet;

    /// <summary>Waits until the transfer ends; false if <paramref name="timeout"/> passed first.</summary>
    public bool Wait(TimeSpan timeout) => finished.Wait(timeout);

    public override string ToString() => $"{ProcessId}: {State}, {PagesDone} of {PagesTotal} pages";

    internal void MarkRunning() => Started = DateTime.Now;

    internal void AddPages(long pages) => Interlocked.Add(ref pagesTotal, pages);

    internal void CountFault() => Interlocked.Increment(ref faults);

    internal void Delivered(long pages, bool onFault, TimeSpan took)
    {
        Interlocked.Add(ref pagesDone, pages);
        Interlocked.Add(ref (onFault ? ref pagesOnFault : ref pagesInBackground), pages);
        Interlocked.Add(ref (onFault ? ref faultTicks : ref backgroundTicks), took.Ticks);
    }

    internal void Dropped(long pages) => Interlocked.Add(ref pagesDone, pages);

    internal void Finish(LazyRestoreState outcome, CheckpointException? error = null)
    {
        Error = error;
        Finished = DateTime.Now;
        state = outcome;
        finished.Set();
    }
}
