namespace CriuPS.Native.Interop;

/// <summary>waitid(2) on a pidfd (P_PIDFD), which Tmds.LibC does not bind.</summary>
public static unsafe class Waitid
{
    private const int PidfdIdType = 3, WExited = 4, WNoHang = 1;
    private const int ClaimExited = 1; // CLD_EXITED

    /// <summary>
    /// Reaps the child <paramref name="pidfd"/> refers to, without waiting: its exit code, or 128 + the signal that
    /// killed it (as shells report it); -1 when it cannot be (reaped by someone else); null when there is nothing to
    /// reap yet (not exited, or exited but still held by a tracer of another process, which it is reported to first).
    /// </summary>
    public static int? ReapExited(FileDescriptor pidfd)
    {
        var info = stackalloc byte[128];
        new Span<byte>(info, 128).Clear();
        long result = Syscall.Raw(SystemCall.Waitid, PidfdIdType, (ulong)pidfd.Value, (ulong)info, WExited | WNoHang, 0);
        int pid = *(int*)(info + 16); // si_pid: 0 when nothing was reaped
        int how = *(int*)(info + 8); // si_code: CLD_EXITED, CLD_KILLED, CLD_DUMPED
        int status = *(int*)(info + 24); // si_status: the exit code, or the signal
        return result != 0 ? -1 : pid == 0 ? null : how == ClaimExited ? status : 128 + status;
    }
}
