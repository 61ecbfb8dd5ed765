using System.Runtime.InteropServices;
using CriuPS.Native.Interop;

namespace CriuPS.Native.Ptrace;

/// <summary>
/// Waits for a tracee's next stop without relying on being the one who collects its wait status: polls
/// wait4(WNOHANG), and when the thread sits in a ptrace stop whose status someone else collected (the .NET
/// runtime reaping its own children), rebuilds the status from the stop's siginfo.
/// </summary>
internal static class StopWatcher
{
    private const int PtraceEventStop = 128;
    private const int SyscallStopCode = Signals.SIGTRAP | 0x80;

    public static WaitStatus Wait(int tid, int processId)
    {
        int rounds = 0;
        int tracedWithoutStatus = 0;
        while (true)
        {
            var status = Wait4.Wait(tid, Wait4.WNOHANG | Wait4.WALL);
            if (status is not null)
            {
                return status.Value;
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
