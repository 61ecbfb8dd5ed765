using System.Runtime.InteropServices;

namespace CriuPS.Native.Interop;

/// <summary>struct itimerspec (timerfd and POSIX timers): the interval of a timer, then the time left to its next expiry.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct ItimerSpec
{
    public long IntervalSeconds, IntervalNanoseconds, ValueSeconds, ValueNanoseconds;
}
