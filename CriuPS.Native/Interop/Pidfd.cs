namespace CriuPS.Native.Interop;

/// <summary>pidfd_open(2), pidfd_getfd(2), pidfd_send_signal(2).</summary>
public static class Pidfd
{
    /// <summary>PIDFD_NONBLOCK: waitid(P_PIDFD) on the pidfd of a running process fails with EAGAIN rather than waiting.</summary>
    public const int NonBlock = O.NONBLOCK;

    /// <summary>PIDFD_THREAD: a pidfd of one thread rather than of its thread group.</summary>
    public const int Thread = O.EXCL;

    public static FileDescriptor Open(int pid, int flags = 0) =>
        new((int)Syscall.Checked($"pidfd_open({pid})", SyscallNumber.PidfdOpen, (ulong)pid, (ulong)flags));

    /// <summary>Duplicates descriptor <paramref name="targetFd"/> of the process behind <paramref name="pidfd"/> into this process.</summary>
    public static FileDescriptor GetFd(FileDescriptor pidfd, int targetFd) =>
        new((int)Syscall.Checked($"pidfd_getfd(fd {targetFd})", SyscallNumber.PidfdGetfd, (ulong)pidfd.Value, (ulong)targetFd, 0));

    public static void SendSignal(FileDescriptor pidfd, int signal) =>
        Syscall.Checked("pidfd_send_signal", SyscallNumber.PidfdSendSignal, (ulong)pidfd.Value, (ulong)signal, 0, 0);
}
