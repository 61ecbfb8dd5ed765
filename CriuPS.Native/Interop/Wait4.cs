namespace CriuPS.Native.Interop;

/// <summary>A decoded wait status: exited, killed by a signal, or stopped (with ptrace details).</summary>
public readonly record struct WaitStatus(int Pid, int Raw)
{
    public bool Exited => (Raw & 0x7f) == 0;
    public int ExitCode => (Raw >> 8) & 0xff;
    public bool Signaled => !Exited && !Stopped && (Raw & 0x7f) != 0;
    public int TermSignal => Raw & 0x7f;
    public bool Stopped => (Raw & 0xff) == 0x7f;
    public int StopSignal => (Raw >> 8) & 0xff;

    /// <summary>The ptrace event of a PTRACE_EVENT stop (0 for plain signal stops).</summary>
    public PtraceEvent Event => (PtraceEvent)((Raw >> 16) & 0xff);

    /// <summary>A syscall-entry or -exit stop under PTRACE_O_TRACESYSGOOD (SIGTRAP | 0x80).</summary>
    public bool IsSyscallStop => Stopped && StopSignal == (Signals.SIGTRAP | 0x80);

    public bool IsGone => Exited || Signaled;

    public override string ToString() =>
        Exited ? $"pid {Pid} exited with {ExitCode}"
        : Signaled ? $"pid {Pid} killed by signal {TermSignal}"
        : Stopped ? $"pid {Pid} stopped by signal {StopSignal & 0x7f}{(Event != PtraceEvent.None ? $" (event {Event})" : "")}"
        : $"pid {Pid} status 0x{Raw:x}";
}

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
