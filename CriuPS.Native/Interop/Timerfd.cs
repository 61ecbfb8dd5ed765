using System.Runtime.InteropServices;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>timerfd_create(2), timerfd_settime(2), timerfd_gettime(2) and the TFD_IOC_SET_TICKS ioctl.</summary>
public static unsafe class Timerfd
{
    /// <summary>TFD_TIMER_ABSTIME: the expiry is a time on the timer's clock, not a delay.</summary>
    public const int AbsoluteTime = 1;

    // _IOW('T', 0, u64): sets the expirations a read will return (CONFIG_CHECKPOINT_RESTORE).
    private const int SetTicksRequest = 0x40085400;

    public static FileDescriptor Create(int clock, int flags) =>
        new((int)Syscall.Checked($"timerfd_create(clock {clock})", SystemCall.TimerfdCreate, (ulong)clock, (ulong)(flags | O.CLOEXEC)));

    public static void SetTime(FileDescriptor timer, int flags, ItimerSpec spec) =>
        Syscall.Checked("timerfd_settime", SystemCall.TimerfdSettime, (ulong)timer.Value, (ulong)flags, (ulong)&spec, 0);

    /// <summary>
    /// The interval and the time left. On a periodic timer whose expiry passed unread this also moves the timer
    /// to its next expiry and counts the missed ones into the ticks a read returns, as a read would.
    /// </summary>
    public static ItimerSpec GetTime(FileDescriptor timer)
    {
        ItimerSpec spec;
        Syscall.Checked("timerfd_gettime", SystemCall.TimerfdGettime, (ulong)timer.Value, (ulong)&spec);
        return spec;
    }

    /// <summary>Sets the expirations not yet read (at least 1), waking readers.</summary>
    public static void SetTicks(FileDescriptor timer, ulong ticks)
    {
        if (LibC.ioctl(timer.Value, SetTicksRequest, &ticks) != 0)
        {
            throw new NativeException("ioctl(TFD_IOC_SET_TICKS)", LibC.errno, $"{ticks} ticks");
        }
    }
}
