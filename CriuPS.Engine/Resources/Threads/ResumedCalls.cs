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
/// for its time left) are let go only once they are past it, so that the process the restore returns is inside those
/// calls again. Until such a thread has run the instruction, a signal sent to the process is delivered first: its
/// handler returns to the instruction and the call waits again (a pause() for ever), where the thread that was
/// checkpointed, inside its call, would have returned EINTR after the handler. CRIU leaves the same window, between its
/// restorer's last sigreturn and the call; ours, from the detach to the instruction, lasts as long as the scheduler
/// takes, which a loaded machine makes milliseconds, long enough for a caller that signals the process as soon as
/// Restore-Process returns. /proc/PID/task/TID/syscall tells: a thread inside a system call shows its number, one not
/// yet past the instruction shows none at that address. Having been on a CPU is not enough: a thread woken by the
/// detach can be preempted on its way back to user space, before the instruction (seen once in CI, with busy
/// processes on both cores), and the file says only "running" of a thread on a CPU or waiting for one. So a thread
/// that shows "running" counts as past the instruction once it has had more CPU time than the way there takes
/// (<see cref="PastTheInstruction"/>): it runs the program's own code.
/// </summary>
internal sealed class ResumedCalls
{
    // Long enough for a thread on a machine busy on every core; a thread not past its instruction by then is only logged.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(2);

    // Far more CPU time than a thread takes from its ptrace stop to its first instruction (microseconds).
    private static readonly TimeSpan PastTheInstruction = TimeSpan.FromMilliseconds(1);

    private readonly List<(int Pid, int Tid, ulong At, TimeSpan RunTime)> waiting = new();

    /// <summary>
    /// Notes a stopped thread that resumes at <paramref name="instructionPointer"/> when that is a system call
    /// instruction (read from <paramref name="memory"/>).
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
        if (code.SequenceEqual(instruction) && ProcFiles.RunTime(pid, tid) is { } runTime)
        {
            waiting.Add((pid, tid, instructionPointer, runTime));
        }
    }

    /// <summary>Once the threads are let go: waits until each noted thread is past its instruction, gone, or stopped.</summary>
    public void WaitUntilPast(EngineLog log)
    {
        if (waiting.Count == 0)
        {
            return;
        }
        var clock = Stopwatch.StartNew();
        var left = new List<(int Pid, int Tid, ulong At, TimeSpan RunTime)>(waiting);
        var spin = new SpinWait();
        while (left.Count > 0 && clock.Elapsed < Patience)
        {
            left.RemoveAll(t => !StillBefore(t.Pid, t.Tid, t.At, t.RunTime));
            if (left.Count > 0)
            {
                spin.SpinOnce(sleep1Threshold: 20); // yields the CPU to the threads, then sleeps a millisecond at a time
            }
        }
        log.Write(left.Count == 0
            ? $"{waiting.Count} threads back in their system calls after {clock.Elapsed.TotalMilliseconds:F1} ms"
            : $"{left.Count} of {waiting.Count} threads had not run their system call instruction after {Patience.TotalSeconds:F0} s (first: {left[0].Tid}): not waited for");
    }

    // Whether the thread has yet to run the instruction at AT: running with hardly any CPU time since it was let go, or
    // in no system call and still there. A thread gone, or stopped again (a process restored stopped, a SIGSTOP
    // since), will not run: nothing to wait for.
    private static bool StillBefore(int pid, int tid, ulong at, TimeSpan runTimeBefore)
    {
        if (ThreadSyscall.Read(pid, tid) is not { } now)
        {
            return false;
        }
        if (now.Running)
        {
            return ProcFiles.RunTime(pid, tid) is { } runTime && runTime - runTimeBefore < PastTheInstruction;
        }
        if (now.Number >= 0 || now.InstructionPointer != at)
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
