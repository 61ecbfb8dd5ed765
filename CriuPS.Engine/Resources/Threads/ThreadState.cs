using System.Runtime.InteropServices;
using System.Text;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Credentials;
using CriuPS.Engine.Resources.Process;
using CriuPS.Engine.Resources.Signals;
using CriuPS.Engine.Restore;
using CriuPS.Native.Arch;
using CriuPS.Native.Arch.X86_64;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Threads;

/// <summary>
/// Everything a thread owns (core-TID.img): registers and the full XSAVE state, TLS (fs/gs base), the
/// clear_child_tid address, the robust futex list, rseq, the alternate signal stack, its pending signals and
/// mask, scheduling, name and credentials. Some of it can only be read from inside the thread (injected calls),
/// some from outside (ptrace, /proc, engine system calls).
/// </summary>
internal static class ThreadState
{
    // A thread's name (TASK_COMM_LEN), NUL included.
    private const int NameBytes = 16;

    [StructLayout(LayoutKind.Sequential)]
    private struct StackT
    {
        public ulong Sp;
        public int Flags;
        public int Padding;
        public ulong Size;
    }

    public static void Dump(DumpedProcess process, Tracee thread, DumpSession session)
    {
        var core = process.Cores[thread.Tid];
        var caller = process.CallerFor(thread);
        var scratch = process.Injection.Scratch;
        var memory = process.Memory;
        int tid = thread.Tid;

        var regs = caller.OriginalRegs;
        // What only the thread itself can tell, asked in one batch: a stop of the thread costs more than the calls.
        // Its name too, which /proc would give for an open, two reads and a close more.
        scratch.Reset();
        var tidAddress = scratch.Reserve(8);
        var altStack = scratch.Reserve(Marshal.SizeOf<StackT>());
        var deathSignal = scratch.Reserve(4);
        var name = scratch.Reserve(NameBytes);
        var batch = new SyscallBatch(scratch, caller);
        batch.Add("prctl(PR_GET_TID_ADDRESS)", RemoteCall.GetTidAddress(tidAddress));
        batch.Add("sigaltstack", RemoteCall.Sigaltstack(Address.Null, altStack));
        batch.Add("prctl(PR_GET_PDEATHSIG)", RemoteCall.GetParentDeathSignal(deathSignal));
        int securebits = batch.Add("prctl(PR_GET_SECUREBITS)", RemoteCall.GetSecurebits());
        batch.Add("prctl(PR_GET_NAME)", RemoteCall.GetName(name));
        var results = batch.Run();
        // What the calls wrote, read in one go: the reservations lie one after the other.
        var answers = memory.Read(tidAddress, (int)(name - tidAddress).Value + NameBytes);
        T Answer<T>(Address at) where T : unmanaged => MemoryMarshal.Read<T>(answers.AsSpan((int)(at - tidAddress).Value));
        core.ThreadInfo = new ThreadInfoX86
        {
            ClearTidAddr = Answer<ulong>(tidAddress),
            Gpregs = RegistersCodec.ToImage(IArchitecture.Current.ForImage(regs)),
            // A parked thread's state as it was read to park it, before any call of ours ran there.
            Fpregs = XStateCodec.ToImage(process.Frozen.Parked.TryGetValue(tid, out var parked) ? parked.XState : thread.GetXState(), IArchitecture.Current.ExtendedState),
        };

        var status = ProcStatus.ReadThread(process.Pid, tid);
        process.NamespacePids[tid] = status.NamespacePids; // the images' ids (TreePids): status is read once per thread
        var tc = core.ThreadCore;
        (tc.FutexRla, tc.FutexRlaLen) = RobustList.Get(tid);
        tc.SchedPolicy = SchedScheduler.GetPolicy(tid);
        tc.SchedPrio = SchedScheduler.GetPriority(tid);
        tc.SchedNice = Priority.GetNice(tid);
        tc.BlkSigset = process.Frozen.OriginalMasks[tid];

        var ss = Answer<StackT>(altStack);
        tc.Sas = new ThreadSasEntry { SsSp = ss.Sp, SsSize = ss.Size, SsFlags = (uint)ss.Flags };

        tc.PdeathSig = Answer<uint>(deathSignal);
        tc.SignalsP = PendingSignals.Read(tid, shared: false);
        tc.Creds = Creds.Dump(status, (uint)results[securebits]);
        tc.SeccompMode = (SeccompMode)status.SeccompMode;
        if ((uint)status.SeccompMode == Seccomp.ModeFilter)
        {
            tc.SeccompFilter = Seccomp.Dump(tid, session.SeccompFilters);
        }
        // A signal that the thread's mask lets through would have interrupted the call (it is pending, held by the freeze).
        bool signalPending = ((status.SigPending | status.SharedPending) & ~tc.BlkSigset) != 0;
        var lastRan = process.Frozen.LastRan.TryGetValue(tid, out var seen) ? seen : (SchedClock.Observation?)null;
        if (InterruptedCall.TimeLeft(regs, memory, lastRan, session.SchedClockOffset, signalPending) is long timeLeft)
        {
            tc.CriupsCallTimeLeftNs = timeLeft;
        }
        var comm = answers.AsSpan((int)(name - tidAddress).Value, NameBytes);
        int end = comm.IndexOf((byte)0);
        tc.Comm = Encoding.UTF8.GetString(end < 0 ? comm : comm[..end]);

        var rseq = Native.Interop.Ptrace.GetRseqConfiguration(tid);
        if (rseq is not null)
        {
            tc.RseqEntry = new RseqEntry { RseqAbiPointer = rseq.Value.RseqAbiPointer, RseqAbiSize = rseq.Value.RseqAbiSize, Signature = rseq.Value.Signature };
        }
    }

    /// <summary>
    /// A thread forked from the host inherits the host's rseq registration; it must go before the host's
    /// memory does, or the kernel kills the thread at its next preemption.
    /// </summary>
    public static void UnregisterInheritedRseq(Tracee thread, RemoteSyscaller caller)
    {
        var rseq = Native.Interop.Ptrace.GetRseqConfiguration(thread.Tid);
        if (rseq is not null)
        {
            caller.Checked("rseq unregister", RemoteCall.UnregisterRseq(rseq.Value.RseqAbiPointer, rseq.Value.RseqAbiSize, rseq.Value.Signature));
        }
    }

    /// <summary>
    /// Restores what each thread of a process sets for itself (the final registers and mask come at release): the
    /// calls of every thread run side by side (<see cref="SyscallBatch.RunTogether"/>), then each thread's scheduling
    /// and pending signals.
    /// </summary>
    public static void Restore(RestoringProcess process)
    {
        var scratch = process.Injection.Scratch;
        scratch.Reset();
        var batches = process.Threads.Select(thread => OwnSettings(thread.Core, new SyscallBatch(scratch, thread.Caller), scratch)).ToList();
        SyscallBatch.RunTogether(batches);
        var cores = process.Images.Cores.Select(c => c.Core).ToList();
        foreach (var thread in process.Threads)
        {
            var tc = thread.Core.ThreadCore;
            RestoreScheduling(thread.Tid, tc);
            // The thread queues its signals to itself by the id it sees itself with.
            PendingSignals.Queue(process, thread.Caller, tc.SignalsP, PidLevels.Thread(process.Images.Pstree, cores.IndexOf(thread.Core))[^1]);
        }
    }

    // The calls a thread makes for itself, queued in its batch (what they point to put in the scratch area).
    private static SyscallBatch OwnSettings(CoreEntry core, SyscallBatch batch, ScratchArea scratch)
    {
        var tc = core.ThreadCore;
        batch.Add("set_tid_address", RemoteCall.SetTidAddress(core.ThreadInfo.ClearTidAddr));
        if (tc.FutexRla != 0)
        {
            batch.Add("set_robust_list", RemoteCall.SetRobustList(tc.FutexRla, tc.FutexRlaLen));
        }
        if (tc.Sas is not null && (tc.Sas.SsSp != 0 || tc.Sas.SsFlags != 0))
        {
            // SS_DISABLE is the only flag sigaltstack accepts on input; SS_ONSTACK is a state, not a setting.
            var ss = scratch.Put(new StackT { Sp = tc.Sas.SsSp, Size = tc.Sas.SsSize, Flags = (int)(tc.Sas.SsFlags & 2) });
            batch.Add("sigaltstack", RemoteCall.Sigaltstack(ss, Address.Null));
        }
        if (tc.HasComm)
        {
            batch.Add("prctl(PR_SET_NAME)", RemoteCall.SetName(scratch, tc.Comm));
        }
        if (tc.RseqEntry is not null)
        {
            batch.Add("rseq", RemoteCall.RegisterRseq(tc.RseqEntry.RseqAbiPointer, tc.RseqEntry.RseqAbiSize, tc.RseqEntry.Signature));
        }
        return batch;
    }

    /// <summary>
    /// Sets the thread's parent-death signal, once its credentials are restored: the kernel clears it whenever a
    /// thread's credentials change.
    /// </summary>
    public static void RestoreParentDeathSignal(CoreEntry core, RemoteSyscaller caller)
    {
        uint signal = core.ThreadCore.PdeathSig;
        if (signal != 0)
        {
            caller.Checked("prctl(PR_SET_PDEATHSIG)", RemoteCall.SetParentDeathSignal(signal));
        }
    }

    /// <summary>
    /// The registers and XSAVE state each thread of a process resumes with, for the end of the restore. A call a thread
    /// was stopped in that waits out its time left is run in it now (<see cref="InterruptedCall"/>, in every such
    /// thread at once): its last injected call.
    /// </summary>
    public static (UserRegs Regs, byte[] XState)[] FinalStates(IReadOnlyList<(CoreEntry Core, RemoteSyscaller Caller)> threads, ScratchArea scratch)
    {
        var regs = threads.Select(t => RegistersCodec.FromImage(t.Core.ThreadInfo.Gpregs)).ToArray();
        var waiting = Enumerable.Range(0, threads.Count).Where(i => threads[i].Core.ThreadCore.HasCriupsCallTimeLeftNs).ToList();
        var resumed = InterruptedCall.Resume(waiting.Select(i => (regs[i], threads[i].Core.ThreadCore.CriupsCallTimeLeftNs, threads[i].Caller)).ToList(), scratch);
        for (int i = 0, w = 0; i < threads.Count; i++)
        {
            regs[i] = w < waiting.Count && waiting[w] == i ? resumed[w++] : IArchitecture.Current.ForResume(regs[i], restartBlockKept: false);
        }
        return threads.Select((t, i) => (regs[i], XStateCodec.FromImage(t.Core.ThreadInfo.Fpregs, IArchitecture.Current.ExtendedState))).ToArray();
    }

    // A real-time policy, or a nice value below the session's, needs CAP_SYS_NICE (or RLIMIT_RTPRIO, RLIMIT_NICE).
    private static void RestoreScheduling(int tid, ThreadCoreEntry tc)
    {
        try
        {
            if (tc.HasSchedPolicy)
            {
                SchedScheduler.Set(tid, tc.SchedPolicy, (int)tc.SchedPrio);
            }
            if (tc.HasSchedNice)
            {
                Priority.SetNice(tid, tc.SchedNice);
            }
        }
        catch (NativeException e) when (e.Errno is Errno.EPERM or Errno.EACCES)
        {
            throw MissingPrivilege.For(Capability.SysNice,
                $"Giving thread {tid} its scheduling policy {tc.SchedPolicy} (priority {tc.SchedPrio}) and nice value {tc.SchedNice}", tid, e);
        }
    }
}
