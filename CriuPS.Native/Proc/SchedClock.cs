using System.Globalization;
using CriuPS.Native.Interop;

namespace CriuPS.Native.Proc;

/// <summary>
/// When a thread last ran, by the scheduler's clock: /proc/PID/task/TID/sched's se.exec_start, the moment its run
/// time was last accounted, which for a sleeping thread is when it went to sleep. A system call that keeps its
/// deadline inside the kernel (poll's, a relative futex wait's, a nanosleep's without a remaining-time pointer) shows
/// nothing of it elsewhere; this is how long such a call has waited. The scheduler's clock (rq_clock_task, in
/// nanoseconds) runs beside CLOCK_MONOTONIC at an offset that <see cref="MonotonicOffset"/> measures on the CPU the
/// thread slept on: each CPU's clock leaves out the interrupt and hypervisor-stolen time of that CPU (where the kernel
/// accounts them), so the offsets of two CPUs may differ; steal time while the thread slept still makes its wait
/// seem shorter than it was (and the call waits longer).
/// </summary>
public static class SchedClock
{
    /// <summary>
    /// What is known of a thread just before it was stopped: when it last ran, on which CPU's clock, and when we looked
    /// (CLOCK_MONOTONIC).
    /// </summary>
    public readonly record struct Observation(long LastRanSchedNanoseconds, int Cpu, long ObservedAtMonotonicNanoseconds);

    private const string ExecStart = "se.exec_start";

    /// <summary>
    /// Reads when thread <paramref name="tid"/> last ran, now; null when the kernel does not say, the thread is gone, or
    /// it is stopped (a call it was in then fails with EINTR on restore, as with CRIU).
    /// </summary>
    public static Observation? Observe(int pid, int tid)
    {
        long? lastRan = LastRan($"/proc/{pid}/task/{tid}/sched");
        if (lastRan is not long value)
        {
            return null;
        }
        try
        {
            // A stopped thread last ran when it entered its stop, which tells nothing of when a call it is in began.
            var stat = ProcStat.ReadThread(pid, tid);
            return stat.State is 'T' or 't' ? null : new Observation(value, stat.Processor, ClockGettime.MonotonicNanoseconds());
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>
    /// CLOCK_MONOTONIC minus the scheduler's clock of <paramref name="cpu"/>, in nanoseconds: a thread of ours, bound
    /// to that CPU, reads CLOCK_MONOTONIC and goes to sleep at once, and its se.exec_start tells when that was by the
    /// CPU's clock. Where we may not run on that CPU (a narrower cpuset), the CPU we run on answers instead.
    /// </summary>
    public static unsafe long MonotonicOffset(int cpu)
    {
        long before = 0;
        int tid = 0;
        var sleeper = new Thread(() =>
        {
            var mask = new ulong[cpu / 64 + 1];
            mask[cpu / 64] = 1UL << (cpu % 64);
            fixed (ulong* bits = mask)
            {
                Syscall.Raw(SystemCall.SchedSetaffinity, 0, (ulong)(mask.Length * sizeof(ulong)), (ulong)bits);
            }
            long now = ClockGettime.MonotonicNanoseconds();
            var nap = new KernelTimespec(0, 50_000_000);
            Volatile.Write(ref before, now);
            Volatile.Write(ref tid, (int)Syscall.Raw(SystemCall.Gettid));
            Syscall.Raw(SystemCall.Nanosleep, (ulong)&nap, 0);
        }) { IsBackground = true, Name = "CriuPS scheduler clock" };
        sleeper.Start();
        int pid = Environment.ProcessId;
        var deadline = Environment.TickCount64 + 1000;
        while (Environment.TickCount64 < deadline)
        {
            int sleeping = Volatile.Read(ref tid);
            // Asleep in its nanosleep: /proc/self/task/TID/syscall starts with the call's number.
            if (sleeping != 0 && ReadOrEmpty($"/proc/{pid}/task/{sleeping}/syscall").StartsWith($"{IArchitecture.Current.NumberOf(SystemCall.Nanosleep)} ", StringComparison.Ordinal)
                && LastRan($"/proc/{pid}/task/{sleeping}/sched") is long lastRan)
            {
                return Volatile.Read(ref before) - lastRan;
            }
            Thread.Yield();
        }
        throw new InvalidOperationException("a thread of ours did not go to sleep within a second to measure the scheduler's clock");
    }

    private static long? LastRan(string schedPath)
    {
        string text = ReadOrEmpty(schedPath);
        int at = text.IndexOf(ExecStart, StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }
        int colon = text.IndexOf(':', at);
        int end = text.IndexOf('\n', colon);
        // Milliseconds with six decimals, as the kernel prints nanoseconds ("%Ld.%06ld").
        var value = text.AsSpan(colon + 1, (end < 0 ? text.Length : end) - colon - 1).Trim();
        int dot = value.IndexOf('.');
        if (dot < 0 || !long.TryParse(value[..dot], NumberStyles.Integer, CultureInfo.InvariantCulture, out long milliseconds)
            || !long.TryParse(value[(dot + 1)..], NumberStyles.Integer, CultureInfo.InvariantCulture, out long nanoseconds))
        {
            return null;
        }
        return milliseconds * 1_000_000 + nanoseconds;
    }

    private static string ReadOrEmpty(string path)
    {
        try
        {
            return ProcFiles.ReadText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }
}
