using CriuPS.Native.Arch;
using CriuPS.Native.Memory;

namespace CriuPS.Native.RemoteSyscall;

// Calls on the target's signals and timers: handlers, masks, queued signals, interval and POSIX timers. Timer and
// clock ids go in zero-extended, as images keep them (uint32); the kernel reads their low 32 bits.
public readonly partial record struct RemoteCall
{
    // The kernel's sigset_t: 64 signals.
    private const ulong KernelSigsetSize = 8;

    /// <summary>rt_sigaction of <paramref name="signal"/>: the handler at <paramref name="action"/> set, the old one written to <paramref name="oldAction"/> (either null).</summary>
    public static RemoteCall RtSigaction(int signal, Address action, Address oldAction) =>
        new(SystemCall.RtSigaction, (ulong)signal, action.Value, oldAction.Value, KernelSigsetSize);

    /// <summary>rt_sigprocmask(<paramref name="how"/>) with the set at <paramref name="set"/>, the old mask written to <paramref name="oldSet"/> (either null).</summary>
    public static RemoteCall RtSigprocmask(int how, Address set, Address oldSet) =>
        new(SystemCall.RtSigprocmask, (ulong)how, set.Value, oldSet.Value, KernelSigsetSize);

    /// <summary>rt_sigtimedwait for the signals of the set at <paramref name="set"/>: the signal taken.</summary>
    public static RemoteCall RtSigtimedwait(Address set, Address info, Address timeout) =>
        new(SystemCall.RtSigtimedwait, set.Value, info.Value, timeout.Value, KernelSigsetSize);

    /// <summary>rt_sigqueueinfo of the siginfo at <paramref name="info"/> to process <paramref name="pid"/>.</summary>
    public static RemoteCall RtSigqueueinfo(int pid, int signal, Address info) => new(SystemCall.RtSigqueueinfo, (ulong)pid, (ulong)signal, info.Value);

    /// <summary>rt_tgsigqueueinfo of the siginfo at <paramref name="info"/> to thread <paramref name="tid"/> of <paramref name="pid"/>.</summary>
    public static RemoteCall RtTgsigqueueinfo(int pid, int tid, int signal, Address info) =>
        new(SystemCall.RtTgsigqueueinfo, (ulong)pid, (ulong)tid, (ulong)signal, info.Value);

    /// <summary>getitimer of <paramref name="which"/> into the struct itimerval at <paramref name="into"/>.</summary>
    public static RemoteCall Getitimer(int which, Address into) => new(SystemCall.Getitimer, (ulong)which, into.Value);

    /// <summary>setitimer of <paramref name="which"/> to the struct itimerval at <paramref name="value"/>, the old one not asked for.</summary>
    public static RemoteCall Setitimer(int which, Address value) => new(SystemCall.Setitimer, (ulong)which, value.Value, 0);

    /// <summary>timer_create on <paramref name="clock"/> with the sigevent at <paramref name="sigevent"/>; the id in (and out of) <paramref name="id"/>.</summary>
    public static RemoteCall TimerCreate(int clock, Address sigevent, Address id) => new(SystemCall.TimerCreate, (uint)clock, sigevent.Value, id.Value);

    /// <summary>timer_settime of a relative value, the struct itimerspec at <paramref name="value"/>; the old one not asked for.</summary>
    public static RemoteCall TimerSettime(int id, Address value) => new(SystemCall.TimerSettime, (uint)id, 0, value.Value, 0);

    /// <summary>timer_gettime into the struct itimerspec at <paramref name="into"/>.</summary>
    public static RemoteCall TimerGettime(int id, Address into) => new(SystemCall.TimerGettime, (uint)id, into.Value);

    public static RemoteCall TimerGetoverrun(int id) => new(SystemCall.TimerGetoverrun, (uint)id);
}
