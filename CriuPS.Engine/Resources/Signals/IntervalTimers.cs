using System.Runtime.InteropServices;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.RemoteSyscall;

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
        // The three timers in one batch of injected calls: one stop of the process instead of three.
        var scratch = process.Injection.Scratch;
        scratch.Reset();
        int size = Marshal.SizeOf<ItimerVal>();
        var values = scratch.Reserve(3 * size);
        var batch = new SyscallBatch(process.Injection);
        foreach (int which in new[] { Real, Virtual, Profiling })
        {
            batch.Add($"getitimer({which})", RemoteCall.Getitimer(which, values + new ByteCount((ulong)(which * size))));
        }
        batch.Run();
        var read = process.Memory.ReadArray<ItimerVal>(values, 3);
        return new TaskTimersEntry { Real = Entry(read[Real]), Virt = Entry(read[Virtual]), Prof = Entry(read[Profiling]) };
    }

    private static ItimerEntry Entry(ItimerVal value) =>
        new() { Isec = (ulong)value.IntervalSeconds, Iusec = (ulong)value.IntervalMicroseconds, Vsec = (ulong)value.ValueSeconds, Vusec = (ulong)value.ValueMicroseconds };

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
        process.Caller.Checked($"setitimer({which})", RemoteCall.Setitimer(which, address));
    }
}
