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
