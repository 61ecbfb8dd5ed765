namespace CriuPS.Native.Interop;

/// <summary>clock_gettime(2).</summary>
public static unsafe class ClockGettime
{
    public const int Monotonic = 1;

    /// <summary>CLOCK_MONOTONIC now, in nanoseconds.</summary>
    public static long MonotonicNanoseconds()
    {
        var (seconds, nanoseconds) = Now(Monotonic);
        return seconds * KernelTimespec.NanosecondsPerSecond + nanoseconds;
    }

    /// <summary>The current time of <paramref name="clock"/> (CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME...).</summary>
    public static (long Seconds, long Nanoseconds) Now(int clock)
    {
        long* time = stackalloc long[2];
        Syscall.Checked($"clock_gettime(clock {clock})", SystemCall.ClockGettime, (ulong)clock, (ulong)time);
        return (time[0], time[1]);
    }
}
