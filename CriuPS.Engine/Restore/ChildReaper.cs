using CriuPS.Native.Interop;
using Tmds.Linux;

namespace CriuPS.Engine.Restore;

/// <summary>
/// Reaps restored processes that stay children of our process, when they exit, so that none lingers as a
/// zombie. It waits with poll on a pidfd and reaps only after the exit: a waitpid-style wait could otherwise
/// swallow the ptrace stops of a later checkpoint of the same process.
/// </summary>
public static class ChildReaper
{
    private const int PidfdIdType = 3;
    private const int WExited = 4;
    private const int WNoHang = 1;

    private static readonly Dictionary<int, int?> ExitCodes = new();

    /// <summary>Starts watching a child; its exit status (the code, or 128 + the signal that killed it) becomes available from <see cref="TryGetExitCode"/>.</summary>
    public static void Watch(int pid)
    {
        var pidfd = Pidfd.Open(pid);
        lock (ExitCodes)
        {
            ExitCodes[pid] = null;
        }
        var thread = new Thread(() => Reap(pid, pidfd)) { IsBackground = true, Name = $"CriuPS reaper of {pid}" };
        thread.Start();
    }

    public static bool TryGetExitCode(int pid, out int? exitCode)
    {
        lock (ExitCodes)
        {
            return ExitCodes.TryGetValue(pid, out exitCode);
        }
    }

    private static unsafe void Reap(int pid, FileDescriptor pidfd)
    {
        using (pidfd)
        {
            var poll = new pollfd { fd = pidfd.Value, events = LibC.POLLIN };
            while (LibC.poll(&poll, 1, -1) < 0 && LibC.errno == Errno.EINTR)
            {
            }
            var info = stackalloc byte[128];
            long result = Syscall.Raw(SyscallNumber.Waitid, PidfdIdType, (ulong)pidfd.Value, (ulong)info, WExited | WNoHang, 0);
            const int ClaimExited = 1;
            int how = *(int*)(info + 8); // si_code: CLD_EXITED, CLD_KILLED, CLD_DUMPED
            int status = *(int*)(info + 24); // si_status: the exit code, or the signal
            int code = result != 0 ? -1 : how == ClaimExited ? status : 128 + status; // as shells report it
            lock (ExitCodes)
            {
                ExitCodes[pid] = code;
            }
        }
    }
}
