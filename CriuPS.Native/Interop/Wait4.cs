namespace CriuPS.Native.Interop;

/// <summary>wait4(2).</summary>
public static unsafe class Wait4
{
    public const int WNOHANG = 1;
    public const int WUNTRACED = 2;
    /// <summary>Wait for threads and clone children too (any child, whatever its exit signal).</summary>
    public const int WALL = 0x40000000;

    /// <summary>Waits for <paramref name="pid"/> (or -1 for any child/tracee); returns null with WNOHANG and nothing to report.</summary>
    public static WaitStatus? Wait(int pid, int options)
    {
        int status;
        while (true)
        {
            long r = Syscall.Raw(SystemCall.Wait4, unchecked((ulong)pid), (ulong)&status, (ulong)options, 0);
            if (r == -Errno.EINTR)
            {
                continue;
            }
            if (r < 0)
            {
                throw new NativeException($"wait4({pid})", (int)-r);
            }
            return r == 0 ? null : new WaitStatus((int)r, status);
        }
    }
}
