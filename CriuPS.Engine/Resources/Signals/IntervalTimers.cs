using System.Runtime.InteropServices;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Resources.Signals;

/// <summary>setitimer(2) timers — real, virtual and profiling (itimer_entry): read and re-armed with injected calls.</summary>
internal static class IntervalTimers
{
    [StructLayout(LayoutKind.Sequential)]
    private struct ItimerVal
    {
        public long IntervalSeconds, IntervalMicroseconds, ValueSeconds, ValueMicroseconds;
    }

    private const int Real = 0, Virtual = 1, Profiling = 2;

    public static TaskTimersEntry Dump(DumpedProcess process)
    {
        return new TaskTimersEntry { Real = Get(process, Real), Virt = Get(process, Virtual), Prof = Get(process, Profiling) };
    }

    private static ItimerEntry Get(DumpedProcess process, int which)
    {
        process.Injection.Scratch.Reset();
        var address = process.Injection.Scratch.Reserve(Marshal.SizeOf<ItimerVal>());
        process.Injection.Caller.Checked($"getitimer({which})", SyscallNumber.Getitimer, (ulong)which, address.Value);
        var value = process.Memory.Read<ItimerVal>(address);
        return new ItimerEntry { Isec = (ulong)value.IntervalSeconds, Iusec = (ulong)value.IntervalMicroseconds, Vsec = (ulong)value.ValueSeconds, Vusec = (ulong)value.ValueMicroseconds };
    }

    public static void Restore(RestoringProcess process)
    {
        var timers = process.Images.LeaderCore.Tc.Timers;
        if (timers is null)
        {
            return;
        }
        Set(process, Real, timers.Real);
        Set(process, Virtual, timers.Virt);
        Set(process, Profiling, timers.Prof);
    }

    private static void Set(RestoringProcess process, int which, ItimerEntry? timer)
    {
        if (timer is null || (timer.Vsec == 0 && timer.Vusec == 0))
        {
            return; // disarmed: nothing to do in a fresh process
        }
        process.Injection.Scratch.Reset();
        var address = process.Injection.Scratch.Put(new ItimerVal
        {
            IntervalSeconds = (long)timer.Isec, IntervalMicroseconds = (long)timer.Iusec, ValueSeconds = (long)timer.Vsec, ValueMicroseconds = (long)timer.Vusec,
        });
        process.Caller.Checked($"setitimer({which})", SyscallNumber.Setitimer, (ulong)which, address.Value, 0);
    }
}
