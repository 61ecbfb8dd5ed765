using CriuPS.Native.RemoteSyscall;
using System.Globalization;
using System.Runtime.InteropServices;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Resources.Signals;

/// <summary>
/// POSIX timers (timer_create), in the task core's posix_timer_entry list: id, clock, how they notify (signal to
/// the process or a thread, value), remaining time and interval. On restore each comes back with its saved id
/// (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.17+), after the threads a timer may target exist.
/// </summary>
internal static class PosixTimers
{
    private const uint SigevThreadId = 4;

    /// <summary>struct sigevent as the kernel reads it (64 bytes): value, signal, notify kind, target thread.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 64)]
    private struct SigEvent
    {
        public ulong Value;
        public int Signal;
        public int Notify;
        public int ThreadId;
    }

    public static void Dump(DumpedProcess process, TaskTimersEntry timers)
    {
        var caller = process.Injection.Caller;
        var scratch = process.Injection.Scratch;
        foreach (var timer in Parse(File.ReadAllText($"/proc/{process.Pid}/timers")))
        {
            scratch.Reset();
            var spec = scratch.Reserve(Marshal.SizeOf<ItimerSpec>());
            caller.Checked($"timer_gettime({timer.ItId})", RemoteCall.TimerGettime((int)timer.ItId, spec));
            var time = process.Memory.Read<ItimerSpec>(spec);
            timer.Overrun = (uint)caller.Checked($"timer_getoverrun({timer.ItId})", RemoteCall.TimerGetoverrun((int)timer.ItId));
            timer.Isec = (ulong)time.IntervalSeconds;
            timer.Insec = (ulong)time.IntervalNanoseconds;
            timer.Vsec = (ulong)time.ValueSeconds;
            timer.Vnsec = (ulong)time.ValueNanoseconds;
            timers.Posix.Add(timer);
        }
    }

    /// <summary>Parses /proc/PID/timers: blocks of "ID:", "signal: N/value", "notify: kind/pid|tid.N", "ClockID:".</summary>
    public static List<PosixTimerEntry> Parse(string text)
    {
        var timers = new List<PosixTimerEntry>();
        PosixTimerEntry? current = null;
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int colon = line.IndexOf(':');
            var key = line[..colon];
            var value = line[(colon + 1)..].Trim();
            switch (key)
            {
                case "ID":
                    current = new PosixTimerEntry { ItId = uint.Parse(value, CultureInfo.InvariantCulture), Overrun = 0 };
                    timers.Add(current);
                    break;
                case "signal":
                    var parts = value.Split('/');
                    current!.SiSigno = uint.Parse(parts[0], CultureInfo.InvariantCulture);
                    current.SivalPtr = ulong.Parse(parts[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                    break;
                case "notify":
                    var (kind, target) = (value[..value.IndexOf('/')], value[(value.IndexOf('/') + 1)..]);
                    uint notify = kind switch { "signal" => 0, "none" => 1, "thread" => 2, _ => throw new InvalidDataException($"unknown timer notification '{value}'") };
                    if (target.StartsWith("tid.", StringComparison.Ordinal))
                    {
                        notify |= SigevThreadId;
                        current!.NotifyThreadId = int.Parse(target[4..], CultureInfo.InvariantCulture);
                    }
                    current!.ItSigevNotify = notify;
                    break;
                case "ClockID":
                    current!.ClockId = uint.Parse(value, CultureInfo.InvariantCulture);
                    break;
            }
        }
        return timers;
    }

    public static void Restore(RestoringProcess process)
    {
        var timers = process.Images.LeaderCore.Tc.Timers?.Posix;
        if (timers is null || timers.Count == 0)
        {
            return;
        }
        var caller = process.Caller;
        var scratch = process.Injection.Scratch;
        long supported = caller.Call(RemoteCall.TimerCreateRestoreIds(on: true));
        if (supported < 0)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"Process {process.Pid} had POSIX timers, and this kernel cannot create them with their saved ids (PR_TIMER_CREATE_RESTORE_IDS needs Linux 6.17).",
                process.Pid);
        }
        foreach (var timer in timers)
        {
            scratch.Reset();
            var id = scratch.Put((int)timer.ItId);
            var evt = scratch.Put(new SigEvent
            {
                Value = timer.SivalPtr,
                Signal = (int)timer.SiSigno,
                Notify = (int)timer.ItSigevNotify,
                ThreadId = timer.HasNotifyThreadId ? timer.NotifyThreadId : 0,
            });
            caller.Checked($"timer_create({timer.ItId})", RemoteCall.TimerCreate((int)timer.ClockId, evt, id));
            int created = process.Memory.Read<int>(id);
            if (created != timer.ItId)
            {
                throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"POSIX timer {timer.ItId} of process {process.Pid} came back as {created}.", process.Pid);
            }
            if (timer.Vsec != 0 || timer.Vnsec != 0)
            {
                var spec = scratch.Put(new ItimerSpec
                {
                    IntervalSeconds = (long)timer.Isec, IntervalNanoseconds = (long)timer.Insec, ValueSeconds = (long)timer.Vsec, ValueNanoseconds = (long)timer.Vnsec,
                });
                caller.Checked($"timer_settime({timer.ItId})", RemoteCall.TimerSettime((int)timer.ItId, spec));
            }
        }
        caller.Checked("prctl(PR_TIMER_CREATE_RESTORE_IDS, off)", RemoteCall.TimerCreateRestoreIds(on: false));
    }
}
