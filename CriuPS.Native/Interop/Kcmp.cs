using System.Runtime.InteropServices;

namespace CriuPS.Native.Interop;

/// <summary>kcmp(2): whether two processes share a kernel object (an open file description, an mm...).</summary>
public static unsafe class Kcmp
{
    public const int File = 0, Vm = 1, Files = 2, Fs = 3, Sighand = 4, Io = 5, Sysvsem = 6, EpollTfd = 7;

    /// <summary>struct kcmp_epoll_slot: the toff-th registration of fd number tfd in the epoll at efd.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct EpollSlot
    {
        public uint Efd, Tfd, Toff;
    }

    /// <summary>0 when equal, 1 or 2 for an ordering, throws on error.</summary>
    public static long Compare(int pid1, int pid2, int type, ulong index1 = 0, ulong index2 = 0)
    {
        // The call's name is made only for an error: a dump compares thousands of descriptors.
        long result = Syscall.Raw(SystemCall.Kcmp, (ulong)pid1, (ulong)pid2, (ulong)type, index1, index2);
        return Syscall.Failed(result) ? throw new NativeException($"kcmp({pid1}, {pid2}, {type})", (int)-result) : result;
    }

    /// <summary>
    /// Whether fd <paramref name="tfd"/> of <paramref name="pid"/> is still the file its epoll at
    /// <paramref name="epfd"/> watches under that number (<paramref name="toff"/>: which of several registrations
    /// with that number, in fdinfo order). False when the number is closed or holds another file now.
    /// </summary>
    public static bool IsEpollTarget(int pid, int epfd, int tfd, uint toff) => IsEpollTarget(pid, tfd, pid, epfd, tfd, toff);

    /// <summary>
    /// Whether fd <paramref name="fd"/> of <paramref name="pid"/> is the file that the epoll at <paramref name="epfd"/>
    /// of <paramref name="epollPid"/> watches as registration (<paramref name="tfd"/>, <paramref name="toff"/>), whatever
    /// number it has now (kcmp's KCMP_EPOLL_TFD). False as well when that fd is closed.
    /// </summary>
    public static bool IsEpollTarget(int pid, int fd, int epollPid, int epfd, int tfd, uint toff)
    {
        var slot = new EpollSlot { Efd = (uint)epfd, Tfd = (uint)tfd, Toff = toff };
        return Syscall.Raw(SystemCall.Kcmp, (ulong)pid, (ulong)epollPid, EpollTfd, (ulong)fd, (ulong)&slot) == 0;
    }
}
