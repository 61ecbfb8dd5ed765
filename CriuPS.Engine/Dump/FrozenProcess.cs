using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Privileges;
using CriuPS.Native.Arch;
using CriuPS.Native.Arch.X86_64;
using CriuPS.Native.Diagnostics;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;
using Tmds.Linux;

namespace CriuPS.Engine.Dump;

/// <summary>
/// A process whose every thread we have seized and stopped, with signals held back (blocked through
/// PTRACE_SETSIGMASK) so that nothing is delivered while we look at it: a signal that arrives stays pending and is
/// saved as pending. Every thread is parked on a frame of its own state (<see cref="ParkedThread"/>) as soon as it
/// stops, before anything of it is changed: if we die at any instant, the kernel detaches it and it returns to
/// itself, its mask included. A process that was stopped (SIGSTOP) stays in its group stop all along: a seized thread
/// runs injected code once it has reported the stop, and the kernel puts it back into the group stop when it is
/// detached, by us or by our death. Release puts every thread back exactly as it was.
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

    /// <summary>
    /// When each thread last ran, read just before it was stopped (the stop makes it run): how long a call it was
    /// stopped in had waited (<see cref="Resources.Threads.InterruptedCall"/>).
    /// </summary>
    public Dictionary<int, SchedClock.Observation> LastRan { get; } = new();

    /// <summary>Registers to put back on release, for threads whose registers we changed.</summary>
    public Dictionary<int, UserRegs> RegistersToRestore { get; } = new();

    /// <summary>Every thread's parked state, when the process could be parked (see <see cref="Unguarded"/>).</summary>
    public Dictionary<int, ParkedThread> Parked { get; } = new();

    /// <summary>Why the process could not be parked, or null: it then survives our death only while it is not frozen.</summary>
    public string? Unguarded { get; private set; }

    /// <summary>
    /// The signal our code in the process stops with: one that it neither catches nor has pending, so that it means
    /// nothing to the process if we die (null: none was free; our code then stops at a no-op system call).
    /// </summary>
    public int? StopSignal { get; private set; }

    /// <summary>The mask our code runs with: every signal but <see cref="StopSignal"/>, which it stops with.</summary>
    public ulong SignalsHeld => Unguarded is null && StopSignal is int stop ? ~Signals.Bit(stop) : ulong.MaxValue;

    /// <summary>
    /// For a process that was stopped, <see cref="SignalsHeld"/>, set only while our code runs: a thread we leave by
    /// dying stays in its group stop without running its way back to itself, so its mask must be its own meanwhile.
    /// Null: the mask is held from the freeze to the release.
    /// </summary>
    public ulong? HeldWhileRunning => WasStopped && Unguarded is null ? SignalsHeld : null;

    // Signals that do nothing by default, the candidates for StopSignal.
    private static readonly int[] IgnoredByDefault = [Signals.SIGURG, Signals.SIGWINCH, Signals.SIGCHLD];

    /// <summary>Whether the process was stopped (SIGSTOP and the like) when we seized it.</summary>
    public bool WasStopped => Leader.WasGroupStopped;

    /// <summary>
    /// Seizes and stops every thread of <paramref name="pid"/>; threads of <paramref name="seized"/> (seized already,
    /// an interrupt pending, by a cgroup freeze) are taken from it instead of seized again.
    /// </summary>
    /// <param name="layoutAhead">The process's areas read ahead of the freeze, if they were: where its restorer is looked for first.</param>
    public static FrozenProcess Freeze(int pid, TimeSpan timeout, EngineLog log, Dictionary<int, Tracee>? seized = null, IReadOnlyList<VmaInfo>? layoutAhead = null)
    {
        var frozen = new FrozenProcess(pid, log);
        try
        {
            frozen.SeizeAllThreads(timeout, seized, layoutAhead);
        }
        catch
        {
            frozen.Release();
            throw;
        }
        return frozen;
    }

    /// <summary>
    /// The areas the seizing looks in for the restorer and each thread's stack: those read ahead of the freeze where
    /// there are some (maps read here is read while the processes seized before this one stand still: 10 ms for
    /// 10,000 areas), and maps read now where there are none or where they do not serve (a restorer no longer in
    /// place, a stack mapped since).
    /// </summary>
    private sealed class SeizeLayout(int pid, IReadOnlyList<VmaInfo>? ahead)
    {
        private List<VmaInfo>? now;

        public IReadOnlyList<VmaInfo>? Ahead => now is null ? ahead : null;

        public IReadOnlyList<VmaInfo> Now => now ??= SmapsParser.ReadMaps(pid);

        public Address? FindRestorer(ProcessMemory memory) =>
            Ahead is { } areas && SignalRestorer.Find(areas, memory) is { } found && SignalRestorer.IsAt(memory, found)
                ? found
                : SignalRestorer.Find(Now, memory);

        public ParkedThread? TryPark(Tracee thread, ProcessMemory memory, Address restorer, int syscallOffset) =>
            (Ahead is { } areas ? ParkedThread.TryPark(thread, memory, areas, restorer, syscallOffset) : null)
            ?? ParkedThread.TryPark(thread, memory, Now, restorer, syscallOffset);
    }

    // Threads may be created while we seize: list again until a listing brings nothing new.
    private void SeizeAllThreads(TimeSpan timeout, Dictionary<int, Tracee>? seized, IReadOnlyList<VmaInfo>? layoutAhead)
    {
        using var memory = ProcessMemory.Open(ProcessId);
        var layout = new SeizeLayout(ProcessId, layoutAhead);
        var restorer = layout.FindRestorer(memory);
        int syscallOffset = restorer is { } found ? SignalRestorer.SyscallOffset(memory, found) : 0;
        if (restorer is null)
        {
            Unguarded = "it has no signal restorer (mov $15, %rax; syscall) in its code";
        }
        else
        {
            var status = ProcStatus.Read(ProcessId);
            StopSignal = IgnoredByDefault.Cast<int?>().FirstOrDefault(s => ((status.SigCaught | status.SharedPending | status.SigPending) & Signals.Bit(s!.Value)) == 0);
        }
        var seen = new HashSet<int>();
        var options = SeizeOptions(SessionPrivileges.Current());
        while (true)
        {
            var fresh = ProcFiles.ThreadIds(ProcessId).Where(seen.Add).ToList();
            if (fresh.Count == 0)
            {
                break;
            }
            // The leader first, so that Threads[0] is always the leader. Every thread of the listing is interrupted
            // before the first is waited for: they run into their stops side by side (for 64 threads one wait for the
            // scheduler to run them, not 64 in a row).
            var interrupted = new List<Tracee>();
            try
            {
                foreach (var tid in fresh.OrderBy(t => t == ProcessId ? 0 : 1))
                {
                    Tracee thread;
                    try
                    {
                        thread = seized is not null && seized.Remove(tid, out var taken) ? taken
                            : Threads.Count == 0 ? Tracee.Seize(tid, ProcessId, options)
                            : Tracee.SeizeSibling(tid, Leader, options);
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
                    if (SchedClock.Observe(ProcessId, tid) is { } observed)
                    {
                        LastRan[tid] = observed;
                    }
                    thread.Interrupt();
                    interrupted.Add(thread);
                }
                StopEach(interrupted, timeout, memory, layout, restorer, syscallOffset);
            }
            catch
            {
                TakeStops(interrupted);
                throw;
            }
        }
        log.Detail($"froze process {ProcessId}: {Threads.Count} thread(s){(WasStopped ? ", it was stopped" : "")}, "
            + (Unguarded is null ? $"parked (our code stops with {(StopSignal is int signal ? $"signal {signal}" : "a no-op system call")})" : $"not parked: {Unguarded}"));
        if (Unguarded is not null)
        {
            log.Warning($"Process {ProcessId} is not protected against the end of this session while it is frozen: {Unguarded}.");
        }
    }

    // Takes the stop of each interrupted thread in turn, then saves its mask and parks it.
    private void StopEach(List<Tracee> interrupted, TimeSpan timeout, ProcessMemory memory, SeizeLayout layout, Address? restorer, int syscallOffset)
    {
        foreach (var thread in interrupted)
        {
            int tid = thread.Tid;
            if (!thread.TryWaitForInterruptStop(timeout))
            {
                throw new CheckpointException(
                    CheckpointErrorKind.FreezeTimeout,
                    $"Thread {tid} of process {ProcessId} did not stop within {timeout.TotalSeconds:0.#} s: {WhyNotStopping(tid)}. The process was left running.",
                    ProcessId,
                    "Checkpoint it again once it is no longer waiting in the kernel, or allow more time with -FreezeTimeout.");
            }
            DeathPoint.Reach(DeathPoint.Stopped);
            OriginalMasks[tid] = Native.Interop.Ptrace.GetSigMask(tid);
            Park(thread, memory, layout, restorer, syscallOffset);
            DeathPoint.Reach(DeathPoint.Parked);
            if (HeldWhileRunning is null)
            {
                Native.Interop.Ptrace.SetSigMask(tid, SignalsHeld);
            }
        }
    }

    // When the freeze fails: the threads interrupted after the one that failed stop too, and only a stopped thread
    // can be detached (Release): their stops are taken, for a second at most all together, so that none stays
    // stopped under this session's trace. One that does not stop in it is detached by the kernel when this thread ends.
    private static void TakeStops(List<Tracee> interrupted)
    {
        var deadline = Environment.TickCount64 + 1000;
        foreach (var thread in interrupted.Where(t => t.IsAttached && !t.IsStopped))
        {
            try
            {
                thread.TryWaitForInterruptStop(TimeSpan.FromMilliseconds(Math.Max(0, deadline - Environment.TickCount64)));
            }
            catch (Exception e) when (e is TraceeGoneException or NativeException)
            {
                // it ended: nothing to detach
            }
        }
    }

    // Parks a thread that just stopped; if one cannot be (no room below its stack pointer), no thread is: the process
    // is then worked on the plain way, with the threads parked so far given their own registers back.
    private void Park(Tracee thread, ProcessMemory memory, SeizeLayout layout, Address? restorer, int syscallOffset)
    {
        if (Unguarded is not null)
        {
            return;
        }
        var parked = layout.TryPark(thread, memory, restorer!.Value, syscallOffset);
        if (parked is null)
        {
            Unguarded = $"thread {thread.Tid} has no writable stack below its stack pointer for the frame it would return to itself from";
            foreach (var other in Parked.Values)
            {
                other.Thread.SetRegs(other.OriginalRegs);
                RegistersToRestore.Remove(other.Thread.Tid);
            }
            Parked.Clear();
            return;
        }
        Parked[thread.Tid] = parked;
        RegistersToRestore[thread.Tid] = parked.OriginalRegs;
    }

    // PTRACE_O_SUSPEND_SECCOMP needs CAP_SYS_ADMIN; without it the pre-flight check has refused processes with filters.
    public static PtraceOptions SeizeOptions(SessionPrivileges session) =>
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

    /// <summary>
    /// Puts back registers and signal masks and lets every thread run on as if nothing happened; with
    /// <paramref name="stopSignal"/> (SIGSTOP) the leader is detached with it, so that the process stops in a group
    /// stop before it runs an instruction of its own (a move's final dump holds it so).
    /// </summary>
    public void Release(int stopSignal = 0)
    {
        // A thread that never stopped cannot be detached; the kernel does it when our tracing thread ends.
        foreach (var thread in Threads.Where(t => t.IsAttached && t.IsStopped))
        {
            DeathPoint.Reach(DeathPoint.Release);
            try
            {
                // The mask first: a parked thread that we leave between the two still returns to itself whole.
                if (OriginalMasks.TryGetValue(thread.Tid, out var mask))
                {
                    Native.Interop.Ptrace.SetSigMask(thread.Tid, mask);
                }
                if (RegistersToRestore.TryGetValue(thread.Tid, out var regs))
                {
                    thread.SetRegs(IArchitecture.Current.ForResume(regs, restartBlockKept: true));
                }
                thread.Detach(thread.Tid == ProcessId ? stopSignal : 0);
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
        Native.Interop.Kill.Send(ProcessId, Signals.SIGKILL);
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
