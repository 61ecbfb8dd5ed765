using System.Diagnostics;
using CriuPS.Engine.Logging;
using CriuPS.Native.Arch;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Threads;

/// <summary>
/// Threads restored at a system call instruction (a call the checkpoint interrupted, run again: pause, read, a wait
/// for its time left) are let go only once they have run, so that the process the restore returns is inside those
/// calls again. Until such a thread has run, a signal sent to the process is delivered first: its handler returns to
/// the instruction and the call waits again (a pause() for ever), where the thread that was checkpointed, inside its
/// call, would have returned EINTR after the handler. CRIU leaves the same window, between its restorer's last
/// sigreturn and the call; ours, from the detach to the thread's first time on a CPU, lasts as long as the scheduler
/// takes, which a loaded machine makes milliseconds, long enough for a caller that signals the process as soon as
/// Restore-Process returns. The kernel counts each time a thread is put on a CPU (its schedstat): once the count has
/// moved, the thread is past the instruction.
/// </summary>
internal sealed class ResumedCalls
{
    // Long enough for a thread on a machine busy on every core; a thread that has not run by then is only logged.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(2);

    private readonly List<(int Pid, int Tid, long Scheduled)> waiting = new();

    /// <summary>
    /// Notes a stopped thread that resumes at <paramref name="instructionPointer"/> when that is a system call
    /// instruction (read from <paramref name="memory"/>), with how many times it has run so far.
    /// </summary>
    public void Note(int pid, int tid, ulong instructionPointer, ProcessMemory memory)
    {
        var instruction = IArchitecture.Current.SyscallInstruction;
        Span<byte> code = stackalloc byte[instruction.Length];
        try
        {
            memory.Read(new Address(instructionPointer), code);
        }
        catch (NativeException)
        {
            return; // not readable: the thread faults there, whatever we wait for
        }
        if (code.SequenceEqual(instruction) && ProcFiles.TimesScheduled(pid, tid) is long scheduled)
        {
            waiting.Add((pid, tid, scheduled));
        }
    }

    /// <summary>Once the threads are let go: waits until each noted thread has run, is gone, or stopped.</summary>
    public void WaitUntilRun(EngineLog log)
    {
        if (waiting.Count == 0)
        {
            return;
        }
        var clock = Stopwatch.StartNew();
        var left = new List<(int Pid, int Tid, long Scheduled)>(waiting);
        var spin = new SpinWait();
        while (left.Count > 0 && clock.Elapsed < Patience)
        {
            left.RemoveAll(t => !StillToRun(t.Pid, t.Tid, t.Scheduled));
            if (left.Count > 0)
            {
                spin.SpinOnce(sleep1Threshold: 20); // yields the CPU to the threads, then sleeps a millisecond at a time
            }
        }
        log.Write(left.Count == 0
            ? $"{waiting.Count} threads back in their system calls after {clock.Elapsed.TotalMilliseconds:F1} ms"
            : $"{left.Count} of {waiting.Count} threads had not run again after {Patience.TotalSeconds:F0} s (first: {left[0].Tid}): not waited for");
    }

    // A thread gone, or stopped again (a process restored stopped, a SIGSTOP since), will not run: nothing to wait for.
    private static bool StillToRun(int pid, int tid, long scheduledBefore)
    {
        if (ProcFiles.TimesScheduled(pid, tid) is not long scheduled || scheduled != scheduledBefore)
        {
            return false;
        }
        try
        {
            return ProcStat.ReadThread(pid, tid).State is not ('T' or 't' or 'Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }
}
