namespace CriuPS.Native.Interop;

/// <summary>
/// Turns off SIGCHLD for stopped children (SA_NOCLDSTOP) while we trace one of our own children: ptrace stops
/// would otherwise wake the .NET runtime's SIGCHLD handler, whose waitpid(child, WNOHANG) for processes started
/// with System.Diagnostics.Process collects the stop and makes .NET believe the child exited. The previous
/// disposition is put back on dispose.
/// </summary>
public sealed unsafe class ChildStopNotifications : IDisposable
{
    private const ulong NoChildStop = 1; // SA_NOCLDSTOP
    private readonly KernelSigaction saved;
    private bool restored;

    private ChildStopNotifications(KernelSigaction saved) => this.saved = saved;

    public static ChildStopNotifications Suppress()
    {
        KernelSigaction current;
        Syscall.Checked("rt_sigaction(SIGCHLD)", SystemCall.RtSigaction, Signals.SIGCHLD, 0, (ulong)&current, KernelSigaction.SigsetSize);
        var quiet = current;
        quiet.Flags |= NoChildStop;
        Syscall.Checked("rt_sigaction(SIGCHLD)", SystemCall.RtSigaction, Signals.SIGCHLD, (ulong)&quiet, 0, KernelSigaction.SigsetSize);
        return new ChildStopNotifications(current);
    }

    public void Dispose()
    {
        if (!restored)
        {
            var previous = saved;
            Syscall.Checked("rt_sigaction(SIGCHLD)", SystemCall.RtSigaction, Signals.SIGCHLD, (ulong)&previous, 0, KernelSigaction.SigsetSize);
            restored = true;
        }
    }
}
