using System.Runtime.InteropServices;
using CriuPS.Native.Interop;

namespace CriuPS.Native.Ptrace;

/// <summary>
/// Waits for the next stop of a tracee that is a child of our own process, which the .NET runtime may know
/// (started with System.Diagnostics.Process): such a child must never be reaped by us, or the runtime fails
/// fast when it finds it gone, and its SIGCHLD handler may collect a ptrace stop before we do. So we look with
/// waitid(WNOWAIT), which reports without collecting, and when the thread sits in a ptrace stop whose status
/// someone else collected, rebuild the status from the stop's siginfo.
/// </summary>
internal static unsafe class StopWatcher
{
    private const int PtraceEventStop = 128;
    private const int SyscallStopCode = Signals.SIGTRAP | 0x80;
    private const int IdTypePid = 1;
    private const int WStopped = 2, WExited = 4, WNoWait = 0x01000000;
    private const int ClaimTrapped = 4, ClaimStopped = 5;

    // How often a wait looks in /proc for a stop whose status was collected by someone else (milliseconds).
    private const long CollectedStopCheck = 5;

    /// <summary>
    /// The ptrace stop a thread sits in now, collected, or null when it runs; never waits, and never reports (or
    /// reaps) an exit, which stays for the thread's parent.
    /// </summary>
    public static WaitStatus? Poll(int tid)
    {
        var info = stackalloc byte[128];
        new Span<byte>(info, 128).Clear();
        long result;
        do
        {
            result = Syscall.Raw(SystemCall.Waitid, IdTypePid, (ulong)tid, (ulong)info, WStopped | Wait4.WNOHANG | Wait4.WALL, 0);
        }
        while (result == -Errno.EINTR);
        if (result < 0)
        {
            throw new NativeException($"waitid({tid})", (int)-result);
        }
        int reporter = *(int*)(info + 16); // si_pid: 0 when nothing is to be reported
        return reporter == 0 ? null : new WaitStatus(tid, (*(int*)(info + 24) << 8) | 0x7f);
    }

    /// <summary>
    /// The stop or exit that waitid would report for the thread now, without collecting it (WNOWAIT): an exit
    /// comes back as a kill and stays for the thread's parent to reap; null when there is nothing to report and
    /// <paramref name="block"/> is false. With <paramref name="block"/> it waits in the kernel for one.
    /// </summary>
    public static WaitStatus? Peek(int tid, bool block)
    {
        var info = stackalloc byte[128];
        new Span<byte>(info, 128).Clear();
        int options = WExited | WStopped | WNoWait | Wait4.WALL | (block ? 0 : Wait4.WNOHANG);
        long result;
        do
        {
            result = Syscall.Raw(SystemCall.Waitid, IdTypePid, (ulong)tid, (ulong)info, (ulong)options, 0);
        }
        while (result == -Errno.EINTR);
        if (result == -Errno.ECHILD)
        {
            return new WaitStatus(tid, Signals.SIGKILL);
        }
        if (result < 0)
        {
            throw new NativeException($"waitid({tid})", (int)-result);
        }
        int reporter = *(int*)(info + 16); // si_pid: 0 when nothing is to be reported
        if (reporter == 0)
        {
            return null;
        }
        int code = *(int*)(info + 8); // si_code: CLD_*
        int status = *(int*)(info + 24); // si_status
        return code is ClaimTrapped or ClaimStopped
            ? new WaitStatus(tid, (status << 8) | 0x7f)
            : new WaitStatus(tid, Signals.SIGKILL); // exited: left for its parent to reap
    }

    /// <summary>
    /// The next stop of the thread, or null once <paramref name="deadline"/> (Environment.TickCount64) has passed.
    /// The wait is on the kernel (<paramref name="doorbell"/>, kept by the caller between waits); but a stop whose
    /// status the runtime collected is never reported again, so the kernel has nothing to wake us with: only
    /// /proc shows the thread sitting in its stop, and that is looked at every <see cref="CollectedStopCheck"/>.
    /// </summary>
    public static WaitStatus? Wait(int tid, int processId, long deadline, ref StopDoorbell? doorbell)
    {
        int tracedWithoutStatus = 0;
        while (true)
        {
            long waitUntil = Math.Min(deadline, Environment.TickCount64 + CollectedStopCheck);
            if (StopDoorbell.CollectOrWait(tid, static tid => Peek(tid, block: false), waitUntil, ref doorbell) is { } status)
            {
                return status;
            }
            switch (State(tid, processId))
            {
                case null or 'Z' or 'X':
                    return new WaitStatus(tid, Signals.SIGKILL);
                case 't':
                    // The kernel marks the thread traced an instant before its status is ready, and the doorbell's
                    // thread may not have run yet: only a status that stays missing was collected by someone else.
                    if (++tracedWithoutStatus >= 3)
                    {
                        return FromSigInfo(tid);
                    }
                    continue;
            }
            tracedWithoutStatus = 0;
            if (Environment.TickCount64 >= deadline)
            {
                return null;
            }
        }
    }

    private static char? State(int tid, int processId)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{processId}/task/{tid}/stat");
            return stat[stat.LastIndexOf(')') + 2];
        }
        catch (IOException)
        {
            return null;
        }
    }

    // ptrace's own notifications (syscall stops, events, interrupt stops) put the would-be wait status in
    // si_code; a signal-delivery stop carries the signal's own siginfo.
    private static WaitStatus FromSigInfo(int tid)
    {
        var info = Interop.Ptrace.GetSigInfo(tid);
        int signal = MemoryMarshal.Read<int>(info);
        int code = MemoryMarshal.Read<int>(info.AsSpan(8));
        bool ptraceNotification = signal == Signals.SIGTRAP && (code & 0x7f) == Signals.SIGTRAP && (code & ~0x7f) != 0;
        if (!ptraceNotification)
        {
            return Stopped(tid, signal, 0);
        }
        if (code == SyscallStopCode)
        {
            return Stopped(tid, SyscallStopCode, 0);
        }
        int evt = code >> 8;
        return Stopped(tid, evt == PtraceEventStop ? signal : Signals.SIGTRAP, evt);
    }

    private static WaitStatus Stopped(int tid, int signal, int evt) => new(tid, (evt << 16) | (signal << 8) | 0x7f);
}
