using CriuPS.Native.Interop;
using Tmds.Linux;

namespace CriuPS.Native.Diagnostics;

/// <summary>
/// Test-only: named instants at which the whole tool dies at once (SIGKILL of our own process, as kill -9 or the OOM
/// killer would do it), to prove that the processes being checkpointed survive the death of the tool at any instant.
/// CRIUPS_DIE_AT=point dies the first time the point is reached, point:N the Nth time. Unset, a point costs a
/// comparison.
/// </summary>
public static class DeathPoint
{
    /// <summary>A thread has just stopped, before it is parked.</summary>
    public const string Stopped = "stopped";

    /// <summary>A thread has just been parked on its frame, before its signals are held back.</summary>
    public const string Parked = "parked";

    /// <summary>An injected call is running in the thread.</summary>
    public const string Call = "call";

    /// <summary>Our code (a batch of calls) is running in the thread.</summary>
    public const string Code = "code";

    /// <summary>Memory is being copied out of the process.</summary>
    public const string Copy = "copy";

    /// <summary>The image files are being written.</summary>
    public const string Write = "write";

    /// <summary>
    /// A background checkpoint's fault handler holds a write of the running process to a protected page, not yet
    /// resolved: the writing thread waits on the tool.
    /// </summary>
    public const string Fault = "fault";

    /// <summary>
    /// A background checkpoint is write-protecting the memory of the running process ahead of its freeze (between the
    /// areas it protects, and between the passes that protect again what the process wrote meanwhile).
    /// </summary>
    public const string Arm = "arm";

    /// <summary>Write tracking is being armed in the process.</summary>
    public const string Track = "track";

    /// <summary>A cgroup frozen for -FreezeCgroup is frozen, before its tasks are seized.</summary>
    public const string CgroupFrozen = "cgroup-frozen";

    /// <summary>Between two threads of the release.</summary>
    public const string Release = "release";

    /// <summary>A page server has just sent pages a lazy restore asked for.</summary>
    public const string Serve = "serve";

    private static readonly (string Name, int Count)? Configured = Parse(Environment.GetEnvironmentVariable("CRIUPS_DIE_AT"));
    private static int reached;

    /// <summary>Whether a death point is set for this process.</summary>
    public static bool IsArmed => Configured is not null;

    public static void Reach(string point)
    {
        if (Configured is not { } configured || !string.Equals(configured.Name, point, StringComparison.Ordinal))
        {
            return;
        }
        if (Interlocked.Increment(ref reached) == configured.Count)
        {
            LibC.kill(Environment.ProcessId, Signals.SIGKILL);
            Thread.Sleep(Timeout.Infinite);
        }
    }

    private static (string, int)? Parse(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }
        int colon = value.IndexOf(':');
        return colon < 0 ? (value, 1) : (value[..colon], int.Parse(value[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }
}
