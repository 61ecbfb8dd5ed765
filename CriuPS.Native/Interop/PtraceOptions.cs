namespace CriuPS.Native.Interop;

[Flags]
public enum PtraceOptions : ulong
{
    None = 0,
    TraceSysGood = 1,
    TraceFork = 1 << 1,
    TraceVFork = 1 << 2,
    TraceClone = 1 << 3,
    TraceExec = 1 << 4,
    TraceVForkDone = 1 << 5,
    TraceExit = 1 << 6,
    TraceSeccomp = 1 << 7,
    /// <summary>The kernel kills the tracee if the tracer exits: a half-built restore never survives us.</summary>
    ExitKill = 1 << 20,

    /// <summary>The tracee's seccomp filters do not apply while we trace it (our injected calls could be forbidden).</summary>
    SuspendSeccomp = 1 << 21,
}
