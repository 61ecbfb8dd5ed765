using CriuPS.Native.Arch;
using CriuPS.Native.Arch.X86_64;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Threads;

/// <summary>
/// A wait with a timeout that the checkpoint interrupted, resumed on restore for the time it had left, counted from
/// the restore. The kernel keeps what resumes such a call after a stop in the thread's restart block (poll's deadline,
/// a relative sleep's or futex wait's), which a restored thread lacks and no interface reads; the registers then make
/// the call fail with EINTR, as CRIU leaves it (and as the image's registers say for CRIU). What each call leaves, on
/// Linux 6.18:
/// - nanosleep and relative clock_nanosleep: -ERESTART_RESTARTBLOCK; the time left is written to the remaining-time
///   argument when there is one, else only the block knows the deadline;
/// - poll with a timeout, futex FUTEX_WAIT with a timeout: -ERESTART_RESTARTBLOCK, the deadline only in the block;
/// - epoll_wait and epoll_pwait: -EINTR after any stop, by design (signal(7)), nothing kept;
/// - absolute waits (clock_nanosleep TIMER_ABSTIME, futex FUTEX_WAIT_BITSET, futex_wait) and select, pselect6, ppoll
///   (which write the time left back to their timeout argument): the call runs again with its own arguments, which
///   <see cref="IArchitecture.ForResume"/> arranges; nothing more is needed.
/// For the others, the dump saves the time left in criups_call_time_left_ns (thread_core_entry, from 1000): the
/// remaining-time argument, else the timeout less how long the thread had slept, which the scheduler's clock tells
/// (<see cref="SchedClock"/>, read just before the thread was stopped; a thread already in a stop, SIGSTOP's, last ran
/// when it stopped, which says nothing of its call: that call keeps the EINTR). The restore then runs the same call in the
/// thread with that time left and interrupts it at once, which leaves the kernel's own restart block in the thread:
/// the thread resumes at its own syscall instruction with restart_syscall, every other register as saved,
/// exactly as after a stop. Its time left counts from that moment, in the restore's last phase, a little before the
/// process runs again (the rest of that phase: other threads, the connections, the detach). epoll_wait and epoll_pwait have no block: they run again with their timeout register
/// (r10, the fourth argument) set to the milliseconds left, the one register CriuPS changes (the calls' wrappers do
/// not read it back); that is done only when no signal was pending for the thread, since a signal with a handler
/// would have made them fail with EINTR. epoll_pwait2 (a timeout in memory) and epoll_pwait with a signal mask keep
/// the EINTR.
/// </summary>
internal static class InterruptedCall
{
    /// <summary>The saved time left of a call resumed without a timeout (epoll_wait waiting for ever).</summary>
    public const long NoTimeout = -1;

    private const long NanosecondsPerMillisecond = 1_000_000;

    /// <summary>
    /// The time left of the call a stopped thread was in (its registers as stopped), when CriuPS resumes it on
    /// restore; null otherwise. <paramref name="observation"/> is when it last ran, read before it was stopped.
    /// </summary>
    public static long? TimeLeft(in UserRegs regs, ProcessMemory memory, SchedClock.Observation? observation, Func<int, long> monotonicOffset, bool signalPending)
    {
        var arch = IArchitecture.Current;
        if (arch.SyscallOf(regs) is not SystemCall number)
        {
            return null;
        }
        long result = arch.ResultOf(regs);
        var copy = regs; // a local function cannot capture an in parameter
        ulong Argument(int index) => arch.ArgumentOf(copy, index);
        long? Waited(long timeout) => observation is { } seen ? Math.Max(0, timeout - (seen.ObservedAtMonotonicNanoseconds - (seen.LastRanSchedNanoseconds + monotonicOffset(seen.Cpu)))) : null;
        long Timespec(ulong address) => memory.Read<KernelTimespec>(new Address(address)).TotalNanoseconds;
        switch (number)
        {
            case SystemCall.Nanosleep when result == -Errno.ERESTART_RESTARTBLOCK:
                return Argument(1) != 0 ? Timespec(Argument(1)) : Waited(Timespec(Argument(0)));
            case SystemCall.ClockNanosleep when result == -Errno.ERESTART_RESTARTBLOCK:
                return Argument(3) != 0 ? Timespec(Argument(3)) : Waited(Timespec(Argument(2)));
            case SystemCall.Poll when result == -Errno.ERESTART_RESTARTBLOCK:
                return Waited((int)Argument(2) * NanosecondsPerMillisecond);
            case SystemCall.Futex when result == -Errno.ERESTART_RESTARTBLOCK && !arch.HasAbsoluteDeadline(regs):
                return Waited(Timespec(Argument(3)));
            case SystemCall.EpollWait or SystemCall.EpollPwait when result == -Errno.EINTR && !signalPending
                && (number == SystemCall.EpollWait || Argument(4) == 0):
                int timeout = (int)Argument(3);
                return timeout < 0 ? NoTimeout : timeout == 0 ? null : Waited(timeout * NanosecondsPerMillisecond);
            default:
                return null;
        }
    }

    /// <summary>
    /// The registers restored threads resume with, each whose saved call had time left to wait (its saved registers,
    /// as the image has them: the call failed with EINTR, and the time it had left). A call with a restart block is
    /// run in its thread now and interrupted (<see cref="RemoteSyscaller.CallInterruptedTogether"/>: in every thread
    /// at once), so this must be each thread's last injected call; the thread then restarts it, or gets the result of
    /// a call that did not wait. The threads are of one process, whose scratch area holds the times left.
    /// </summary>
    public static UserRegs[] Resume(IReadOnlyList<(UserRegs Saved, long TimeLeft, RemoteSyscaller Caller)> threads, ScratchArea scratch)
    {
        var arch = IArchitecture.Current;
        var regs = new UserRegs[threads.Count];
        var calls = new List<(RemoteSyscaller Caller, RemoteCall Call)>();
        var called = new List<int>();
        scratch.Reset();
        for (int i = 0; i < threads.Count; i++)
        {
            var (saved, timeLeft, caller) = threads[i];
            var number = arch.SyscallOf(saved) ?? throw new InvalidOperationException("the saved registers show no system call to resume with its time left");
            ulong Argument(int index) => arch.ArgumentOf(saved, index);
            long milliseconds = (timeLeft + NanosecondsPerMillisecond - 1) / NanosecondsPerMillisecond; // rounded up
            if (number is SystemCall.EpollWait or SystemCall.EpollPwait)
            {
                regs[i] = arch.RunAgain(timeLeft == NoTimeout ? saved
                    : arch.WithArgument(saved, 3, (ulong)(int)Math.Min(int.MaxValue, milliseconds)));
                continue;
            }
            var left = scratch.Put(KernelTimespec.FromNanoseconds(timeLeft)).Value;
            var call = number switch
            {
                SystemCall.Nanosleep => new RemoteCall(number, left, Argument(1)),
                SystemCall.ClockNanosleep => new RemoteCall(number, Argument(0), 0, left, Argument(3)),
                SystemCall.Poll => new RemoteCall(number, Argument(0), Argument(1), (ulong)milliseconds),
                SystemCall.Futex => new RemoteCall(number, Argument(0), Argument(1), Argument(2), left, Argument(4), Argument(5)),
                _ => throw new InvalidOperationException($"system call {number} is not one CriuPS resumes with its time left"),
            };
            calls.Add((caller, call));
            called.Add(i);
        }
        var results = RemoteSyscaller.CallInterruptedTogether(calls);
        for (int c = 0; c < called.Count; c++)
        {
            var saved = threads[called[c]].Saved;
            regs[called[c]] = results[c] == -Errno.ERESTART_RESTARTBLOCK ? arch.RunRestartSyscall(saved) : arch.ReturnWith(saved, results[c]);
        }
        return regs;
    }
}
