using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Privileges;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;
using Tmds.Linux;

namespace CriuPS.Engine.Dump;

/// <summary>
/// A process whose every thread we have seized and stopped, with all signals held back (blocked through
/// PTRACE_SETSIGMASK) so that nothing is delivered while we look at it: a signal that arrives stays pending and is
/// saved as pending. Release puts every thread back exactly as it was.
/// </summary>
internal sealed class FrozenProcess
{
    private readonly EngineLog log;

    private FrozenProcess(int pid, EngineLog log)
    {
        ProcessId = pid;
        this.log = log;
    }

    public int ProcessId { get; }

    /// <summary>Every thread, the leader first.</summary>
    public List<Tracee> Threads { get; } = new();

    public Tracee Leader => Threads[0];

    /// <summary>The signal mask each thread had before we blocked everything.</summary>
    public Dictionary<int, ulong> OriginalMasks { get; } = new();

    /// <summary>Registers to put back on release, for threads whose registers we changed.</summary>
    public Dictionary<int, UserRegs> RegistersToRestore { get; } = new();

    /// <summary>Whether the process was stopped (SIGSTOP and the like) when we seized it.</summary>
    public bool WasStopped => Leader.WasGroupStopped;

    public static FrozenProcess Freeze(int pid, TimeSpan timeout, EngineLog log)
    {
        var frozen = new FrozenProcess(pid, log);
        try
        {
            frozen.SeizeAllThreads(timeout);
        }
        catch
        {
            frozen.Release();
            throw;
        }
        return frozen;
    }

    // Threads may be created while we seize: list again until a listing brings nothing new.
    private void SeizeAllThreads(TimeSpan timeout)
    {
        var seen = new HashSet<int>();
        var options = SeizeOptions(SessionPrivileges.Current());
        while (true)
        {
            var fresh = ProcFiles.ThreadIds(ProcessId).Where(seen.Add).ToList();
            if (fresh.Count == 0)
            {
                break;
            }
            // The leader first, so that Threads[0] is always the leader.
            foreach (var tid in fresh.OrderBy(t => t == ProcessId ? 0 : 1))
            {
                Tracee thread;
                try
                {
                    thread = Tracee.Seize(tid, ProcessId, options);
                }
                catch (NativeException e) when (e.Errno == Errno.ESRCH && tid != ProcessId)
                {
                    continue; // the thread exited between the listing and the seize
                }
                catch (NativeException e) when (e.Errno is Errno.EPERM or Errno.ESRCH)
                {
                    throw TraceAccess.SeizeRefused(ProcessId, tid, e);
                }
                Threads.Add(thread);
                if (!thread.TryInterruptAndWait(timeout))
                {
                    throw new CheckpointException(
                        CheckpointErrorKind.FreezeTimeout,
                        $"Thread {tid} of process {ProcessId} did not stop within {timeout.TotalSeconds:0.#} s: {WhyNotStopping(tid)}. The process was left running.",
                        ProcessId,
                        "Checkpoint it again once it is no longer waiting in the kernel, or allow more time with -FreezeTimeout.");
                }
                OriginalMasks[tid] = Native.Interop.Ptrace.GetSigMask(tid);
                Native.Interop.Ptrace.SetSigMask(tid, ulong.MaxValue);
            }
        }
        if (WasStopped)
        {
            // A stopped process re-enters its group stop instead of running injected code: continue it (our
            // ptrace stop still holds it) and stop it again on release. The SIGCONT stays pending, blocked; it is
            // taken back once our code runs in the process (see TakeBackContinue) unless one was pending already.
            ContinueIsOurs = (ProcStatus.Read(ProcessId).SharedPending & Signals.Bit(Signals.SIGCONT)) == 0;
            LibC.kill(ProcessId, Signals.SIGCONT);
        }
        log.Detail($"froze process {ProcessId}: {Threads.Count} thread(s){(WasStopped ? ", it was stopped" : "")}");
    }

    // PTRACE_O_SUSPEND_SECCOMP needs CAP_SYS_ADMIN; without it the pre-flight check has refused processes with filters.
    private static PtraceOptions SeizeOptions(SessionPrivileges session) =>
        PtraceOptions.TraceSysGood | (session.Has(Capability.SysAdmin) ? PtraceOptions.SuspendSeccomp : 0);

    // What the thread is doing, from /proc: its state and the kernel function it waits in.
    private string WhyNotStopping(int tid)
    {
        try
        {
            var stat = ProcStat.ReadThread(ProcessId, tid);
            var wchan = File.ReadAllText($"/proc/{ProcessId}/task/{tid}/wchan").Trim();
            string where = wchan is "" or "0" ? "" : $" in {wchan}";
            return stat.State == 'D' ? $"it waits uninterruptibly in the kernel (state D{where})" : $"it is in state {stat.State}{where}";
        }
        catch (IOException)
        {
            return "it could not be observed";
        }
    }

    /// <summary>Whether the SIGCONT now pending is the one we sent to wake a stopped process.</summary>
    public bool ContinueIsOurs { get; private set; }

    /// <summary>Dequeues the SIGCONT we sent to a stopped process, with an injected rt_sigtimedwait that does not wait.</summary>
    public void TakeBackContinue(Injection injection)
    {
        if (!ContinueIsOurs)
        {
            return;
        }
        injection.Scratch.Reset();
        var set = injection.Scratch.Put(Signals.Bit(Signals.SIGCONT));
        var noWait = injection.Scratch.PutArray<long>(new long[] { 0, 0 });
        injection.Caller.Checked("rt_sigtimedwait(SIGCONT)", SyscallNumber.RtSigtimedwait, set.Value, 0, noWait.Value, 8);
        ContinueIsOurs = false;
    }

    /// <summary>Puts back registers and signal masks and lets every thread run on as if nothing happened.</summary>
    public void Release()
    {
        // A thread that never stopped cannot be detached; the kernel does it when our tracing thread ends.
        foreach (var thread in Threads.Where(t => t.IsAttached && t.IsStopped))
        {
            try
            {
                if (RegistersToRestore.TryGetValue(thread.Tid, out var regs))
                {
                    thread.SetRegs(SyscallRestart.ForResume(regs, restartBlockKept: true));
                }
                if (OriginalMasks.TryGetValue(thread.Tid, out var mask))
                {
                    Native.Interop.Ptrace.SetSigMask(thread.Tid, mask);
                }
                if (WasStopped && thread == Leader)
                {
                    LibC.kill(ProcessId, Signals.SIGSTOP); // back into the group stop it was in
                }
                thread.Detach();
            }
            catch (NativeException e)
            {
                log.Error($"releasing {thread}: {e.Message}");
                Native.Interop.Ptrace.TryDetach(thread.Tid);
            }
        }
    }

    /// <summary>Kills the process (after a successful dump) and collects its threads' exit notifications.</summary>
    public void Kill()
    {
        LibC.kill(ProcessId, Signals.SIGKILL);
        // The leader's end is reported only after every other thread's: collect those first.
        foreach (var thread in Threads.Where(t => t.IsAttached).OrderBy(t => t.Tid == ProcessId ? 1 : 0))
        {
            try
            {
                while (true)
                {
                    thread.WaitStop();
                    thread.Continue();
                }
            }
            catch (TraceeGoneException)
            {
                // This is what we wait for.
            }
            catch (NativeException e) when (e.Errno == Errno.ECHILD)
            {
                // Already reported to (and reaped by) its parent.
            }
        }
    }
}
