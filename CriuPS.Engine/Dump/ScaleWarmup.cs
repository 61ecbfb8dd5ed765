using System.Buffers;
using CriuPS.Native.Arch.X86_64;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Dump;

/// <summary>
/// Compiles, before any freeze, the code that only a target larger than the rehearsal's one-threaded sleep reaches:
/// .NET's own generic code over our value types, which ReadyToRun cannot precompile and which runs only past some
/// size (a dictionary of registers or scheduler observations growing past a few threads, a sort of more than 16
/// address ranges, a list of ranges built from more than 8, a pool of iovecs renting more than its first arrays). A
/// fresh PowerShell's first checkpoint of 64 threads compiled these while the target was frozen (dump.log's "the
/// runtime compiled N methods" in Freezing, Saving process state and Saving memory). Run by the engine's warm-up,
/// on the same instantiations the dump uses, with throwaway data.
/// </summary>
internal static class ScaleWarmup
{
    // Past every threshold above (and a few resizes), small enough to cost nothing.
    private const int Items = 200;

    public static void Run()
    {
        var registers = new Dictionary<int, UserRegs>();
        var lastRan = new Dictionary<int, SchedClock.Observation>();
        for (int tid = 1; tid <= Items; tid++)
        {
            registers[tid] = default;
            lastRan[tid] = default;
        }
        var ranges = Enumerable.Range(0, Items)
            .Select(i => new AddressRange((ulong)(Items - i) << Page.Shift, (ulong)(Items - i + 1) << Page.Shift))
            .Where(range => range.Start.Value != 0)
            .ToList();
        ranges.Sort((a, b) => a.Start.Value.CompareTo(b.Start.Value));
        var iovecs = ArrayPool<IoVec>.Shared.Rent(1024);
        ArrayPool<IoVec>.Shared.Return(iovecs);
    }
}
