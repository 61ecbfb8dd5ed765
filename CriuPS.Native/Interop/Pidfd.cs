using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>pidfd_open(2), pidfd_getfd(2), pidfd_send_signal(2), and poll(2) on a pidfd.</summary>
public static unsafe class Pidfd
{
    /// <summary>PIDFD_NONBLOCK: waitid(P_PIDFD) on the pidfd of a running process fails with EAGAIN rather than waiting.</summary>
    public const int NonBlock = O.NONBLOCK;

    /// <summary>PIDFD_THREAD: a pidfd of one thread rather than of its thread group.</summary>
    public const int Thread = O.EXCL;

    public static FileDescriptor Open(int pid, int flags = 0) =>
        new((int)Syscall.Checked($"pidfd_open({pid})", SystemCall.PidfdOpen, (ulong)pid, (ulong)flags));

    /// <summary>A pidfd of process <paramref name="pid"/>, or null when there is no such process (ESRCH).</summary>
    public static FileDescriptor? TryOpen(int pid)
    {
        long result = Syscall.Raw(SystemCall.PidfdOpen, (ulong)pid, 0);
        return result >= 0 ? new FileDescriptor((int)result)
            : result == -Errno.ESRCH ? null
            : throw new NativeException($"pidfd_open({pid})", (int)-result);
    }

    /// <summary>Duplicates descriptor <paramref name="targetFd"/> of the process behind <paramref name="pidfd"/> into this process.</summary>
    public static FileDescriptor GetFd(FileDescriptor pidfd, int targetFd) =>
        new((int)Syscall.Checked($"pidfd_getfd(fd {targetFd})", SystemCall.PidfdGetfd, (ulong)pidfd.Value, (ulong)targetFd, 0));

    public static void SendSignal(FileDescriptor pidfd, int signal) =>
        Syscall.Checked("pidfd_send_signal", SystemCall.PidfdSendSignal, (ulong)pidfd.Value, (ulong)signal, 0, 0);

    /// <summary>
    /// Waits in the kernel until the process behind <paramref name="pidfd"/> has exited (a zombie has: it runs no
    /// more), or <paramref name="timeout"/> passes; true when it has. A pidfd polls readable once every thread of
    /// the process has exited.
    /// </summary>
    public static bool WaitExited(FileDescriptor pidfd, TimeSpan timeout) => WaitFor(pidfd, LibC.POLLIN, LibC.POLLIN, timeout);

    /// <summary>
    /// Waits in the kernel until the process behind <paramref name="pidfd"/> is reaped (gone, not a zombie), or
    /// <paramref name="timeout"/> passes; true when it is gone. A pidfd polls readable once the process exits and
    /// hangs up once its parent has reaped it (kernels with pidfs, 6.9 on; measured on 6.18: poll asking for no
    /// event woke with POLLHUP at the instant of the parent's waitpid).
    /// </summary>
    public static bool WaitReaped(FileDescriptor pidfd, TimeSpan timeout) => WaitFor(pidfd, 0, LibC.POLLHUP, timeout);

    // Polls the pidfd for the events asked (none: only those poll reports unasked, as POLLHUP) until one comes or the
    // timeout passes, through signals; true when one of the events awaited came.
    private static bool WaitFor(FileDescriptor pidfd, short asked, short awaited, TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            long left = Math.Max(0, deadline - Environment.TickCount64);
            int events = Poll.Once(pidfd, asked, (int)Math.Min(left, int.MaxValue));
            if (events > 0)
            {
                return (events & awaited) != 0;
            }
            if (events == 0)
            {
                return false;
            }
            if (-events != Errno.EINTR)
            {
                throw new NativeException("poll(pidfd)", -events);
            }
        }
    }
}
