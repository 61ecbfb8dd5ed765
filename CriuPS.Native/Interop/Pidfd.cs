namespace CriuPS.Native.Interop;

/// <summary>pidfd_open(2), pidfd_getfd(2), pidfd_send_signal(2).</summary>
public static class Pidfd
{
    public static FileDescriptor Open(int pid) =>
        new((int)Syscall.Checked($"pidfd_open({pid})", SyscallNumber.PidfdOpen, (ulong)pid, 0));

    /// <summary>Duplicates descriptor <paramref name="targetFd"/> of the process behind <paramref name="pidfd"/> into this process.</summary>
    public static FileDescriptor GetFd(FileDescriptor pidfd, int targetFd) =>
        new((int)Syscall.Checked($"pidfd_getfd(fd {targetFd})", SyscallNumber.PidfdGetfd, (ulong)pidfd.Value, (ulong)targetFd, 0));

    public static void SendSignal(FileDescriptor pidfd, int signal) =>
        Syscall.Checked("pidfd_send_signal", SyscallNumber.PidfdSendSignal, (ulong)pidfd.Value, (ulong)signal, 0, 0);
}
