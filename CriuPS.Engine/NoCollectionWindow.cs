using System.Runtime;
using CriuPS.Engine.Logging;

namespace CriuPS.Engine;

/// <summary>
/// Keeps the garbage collector out of the time a process stands still: the runtime's no-GC region
/// (GC.TryStartNoGCRegion), in a dump from just before the first task is stopped to the dump's end (a background
/// checkpoint's to the moment the tree runs again, before its long copy), in a restore from its start to the release.
/// A collection there stops every thread of the engine while the processes wait for it: in a new PowerShell, whose
/// heap is still small, a 64-thread checkpoint met several, 46 to 53 ms frozen against 35 to 37 with collections held
/// off. (Closed as the tree ran again, the window left the dump's next allocation a collection of all it had made:
/// perf over 10 checkpoints of 64 threads by criups-engine, 262 samples in collections before, 125 after.) A restore
/// opens it before it reads the images, which all survive to the end, and <see cref="Renew"/>s it as the first process
/// is made: a collection amid the reading compacted them all (3.7 ms of a 10,000-area restore's 6.3 ms of checks, perf
/// over 15 restores by criups-engine).
/// The region starts without a collection (disallowFullBlockingGC: the runtime sets the budget aside, where it would
/// compact the whole heap first, 2.6 ms of each restore by a fresh criups-engine); where the budget cannot be had that
/// way, collections are not held off and the log says so. A window that allocates more than <see cref="Budget"/> gets
/// its collection anyway, as before; the runtime has one region per process, so a second operation of the same
/// session while one holds it goes without.
/// </summary>
internal sealed class NoCollectionWindow : IDisposable
{
    /// <summary>What the window may allocate: a 1 GiB dump's frozen window allocates a few MiB (its buffers are pooled).</summary>
    private const long Budget = 64L << 20;

    private static int taken;

    private readonly EngineLog log;
    private readonly long allocatedAtStart = GC.GetTotalAllocatedBytes();
    private bool open;

    private NoCollectionWindow(EngineLog log, bool open)
    {
        this.log = log;
        this.open = open;
    }

    /// <summary>Holds collections off from now, when no other dump of this process does.</summary>
    public static NoCollectionWindow Begin(EngineLog log)
    {
        if (Interlocked.CompareExchange(ref taken, 1, 0) != 0)
        {
            return new NoCollectionWindow(log, open: false);
        }
        try
        {
            if (GC.TryStartNoGCRegion(Budget, disallowFullBlockingGC: true))
            {
                return new NoCollectionWindow(log, open: true);
            }
        }
        catch (InvalidOperationException)
        {
            // a no-GC region of someone else's in this process (PowerShell code may start one too)
        }
        catch (ArgumentOutOfRangeException)
        {
            // a budget larger than this runtime's configuration allows a region
        }
        Volatile.Write(ref taken, 0);
        log.Detail("the garbage collector could not be held off while the processes stand still");
        return new NoCollectionWindow(log, open: false);
    }

    /// <summary>
    /// The window for what follows: this one while it holds and has half its budget left, else a new one (which the
    /// runtime opens without a collection of what was allocated before, when it can).
    /// </summary>
    public NoCollectionWindow Renew()
    {
        if (open && GCSettings.LatencyMode == GCLatencyMode.NoGCRegion && GC.GetTotalAllocatedBytes() - allocatedAtStart < Budget / 2)
        {
            return this;
        }
        End("while the images were read");
        return Begin(log);
    }

    /// <summary>Lets collections run again (once the tree runs); says so in the log when one came inside the window.</summary>
    public void Dispose() => End("while the processes stood still");

    private void End(string when)
    {
        if (!open)
        {
            return;
        }
        open = false;
        try
        {
            if (GCSettings.LatencyMode == GCLatencyMode.NoGCRegion)
            {
                GC.EndNoGCRegion();
                return;
            }
        }
        catch (InvalidOperationException)
        {
            // the region ended between the look and the call: by a collection, as below
        }
        finally
        {
            Volatile.Write(ref taken, 0);
        }
        log.Detail($"a garbage collection came {when}: more than {Budget >> 20} MiB were allocated");
    }
}
