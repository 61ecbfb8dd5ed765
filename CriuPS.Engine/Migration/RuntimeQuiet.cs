using CriuPS.Engine.Logging;

namespace CriuPS.Engine.Migration;

/// <summary>
/// Either end of a move, right before the final freeze: the rounds and the rehearsal made the dump's and the
/// restore's code hot, and the runtime compiles hot code again, optimized, on a background thread some 100 ms later.
/// Waited out now, those compilations stay out of the downtime, where they would share the CPU with the final dump
/// here or with the restore on the destination (Move-Process asks it there through the session).
/// </summary>
public static class RuntimeQuiet
{
    /// <summary>Waits until the runtime has compiled nothing for 200 ms (1 s at most); says how long it waited and what was compiled meanwhile.</summary>
    public static string Wait()
    {
        var (waited, compiled) = JitWork.WaitUntilQuiet(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(1));
        return $"waited {waited.TotalMilliseconds:F0} ms for the runtime to finish compiling ({compiled} methods)";
    }
}
