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

    /// <summary>The next stop of the thread, or null once <paramref name="deadline"/> (Environment.TickCount64) has passed.</summary>
    public static WaitStatus? Wait(int tid, int processId, long deadline)
    {
        int rounds = 0;
        int tracedWithoutStatus = 0;
        var info = stackalloc byte[128];
        while (true)
        {
            new Span<byte>(info, 128).Clear();
            long result = Syscall.Raw(SystemCall.Waitid, IdTypePid, (ulong)tid, (ulong)info, WExited | WStopped | WNoWait | Wait4.WNOHANG | Wait4.WALL, 0);
            if (result == -Errno.ECHILD)
            {
                return new WaitStatus(tid, Signals.SIGKILL);
            }
            if (result < 0 && result != -Errno.EINTR)
            {
                throw new NativeException($"waitid({tid})", (int)-result);
            }
            int reporter = *(int*)(info + 16); // si_pid
            if (reporter != 0)
            {
                int code = *(int*)(info + 8); // si_code: CLD_*
                int status = *(int*)(info + 24); // si_status
                return code is ClaimTrapped or ClaimStopped
                    ? new WaitStatus(tid, (status << 8) | 0x7f)
                    : new WaitStatus(tid, Signals.SIGKILL); // exited: left for its parent to reap
            }
            switch (State(tid, processId))
            {
                case null or 'Z' or 'X':
                    return new WaitStatus(tid, Signals.SIGKILL);
                case 't':
                    // The kernel marks the thread traced an instant before its status is ready: only a status
                    // that stays missing was collected by someone else.
                    if (++tracedWithoutStatus >= 3)
                    {
                        return FromSigInfo(tid);
                    }
                    Thread.Sleep(1);
                    continue;
            }
            tracedWithoutStatus = 0;
            if (Environment.TickCount64 >= deadline)
            {
                return null;
            }
            if (++rounds < 200)
            {
                Thread.Yield();
            }
            else
            {
                Thread.Sleep(1);
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
