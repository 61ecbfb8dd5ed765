using System.Runtime;

namespace CriuPS.Engine.Logging;

/// <summary>
/// What the runtime has compiled so far, in every thread of this process: a phase that compiles is a phase that runs
/// slower the first time in a session (a fresh PowerShell per checkpoint pays it each time), so the log says how much
/// of each phase went to the JIT. The module is precompiled (ReadyToRun); what remains is mostly generic code over
/// types of other assemblies and rejits of hot methods.
/// </summary>
internal readonly record struct JitWork(long Methods, TimeSpan Time)
{
    public static JitWork SoFar() => new(JitInfo.GetCompiledMethodCount(), JitInfo.GetCompilationTime());

    /// <summary>
    /// Waits until the runtime has compiled nothing for <paramref name="quiet"/>, or <paramref name="longest"/> has
    /// passed; returns the wait and what was compiled meanwhile. Code that runs often is compiled again, optimized,
    /// on a background thread some 100 ms after it became hot: a freeze taken right after work that made code hot
    /// (a move's pre-dump rounds) would share the CPU with those compilations.
    /// </summary>
    public static (TimeSpan Waited, long Methods) WaitUntilQuiet(TimeSpan quiet, TimeSpan longest)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long start = JitInfo.GetCompiledMethodCount();
        long last = start;
        var lastChange = clock.Elapsed;
        while (clock.Elapsed - lastChange < quiet && clock.Elapsed < longest)
        {
            // Not the kernel's to tell: the runtime's compilations raise no event short of an EventListener on its
            // JIT events, whose own work would be part of what this waits out.
            Thread.Sleep(10);
            long now = JitInfo.GetCompiledMethodCount();
            if (now != last)
            {
                last = now;
                lastChange = clock.Elapsed;
            }
        }
        return (clock.Elapsed, last - start);
    }

    /// <summary>" (the runtime compiled N methods for X ms of it)" since <paramref name="start"/>, or nothing when it compiled nothing.</summary>
    public string Since(JitWork start)
    {
        long methods = Methods - start.Methods;
        return methods <= 0 ? "" : $" (the runtime compiled {methods} methods for {(Time - start.Time).TotalMilliseconds:F1} ms of it)";
    }
}
