using CriuPS.Engine.Errors;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Process;

/// <summary>
/// The end of a process saved as a zombie: once it has its PID, parent, session and group, its shell exits the way
/// it did, with its exit code or killed by its signal, so that its parent's wait finds the same status. The shell
/// stays a traced child of ours until then; we collect the tracer's notice, which leaves the zombie to its parent.
/// </summary>
internal static class Zombies
{
    private const int RlimitCore = 4;

    public static void End(ProcessShell shell, ZombieImages zombie)
    {
        int status = zombie.ExitStatus;
        var caller = shell.Injection.Caller;
        shell.Injection.Scratch.Reset();
        caller.Checked("prctl(PR_SET_NAME)", RemoteCall.SetName(shell.Injection.Scratch, zombie.Core.Tc.Comm));
        int signal = status & 0x7f;
        try
        {
            if (signal == 0)
            {
                caller.Call(RemoteCall.ExitGroup((status >> 8) & 0xff));
            }
            else
            {
                DieOf(shell, signal);
            }
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"The zombie {zombie.Pid} did not exit.", zombie.Pid);
        }
        catch (TraceeGoneException)
        {
            shell.Memory.Dispose();
        }
    }

    // Killed by the signal itself, its mask open and no core to write (the core-dumped bit of a status, 0x80, cannot
    // come back without writing a core file: the kernel sets it only once one is written). A signal-delivery stop
    // hands the signal over; SIGKILL ends the task without one, and a continue may then find it gone (ESRCH).
    private static void DieOf(ProcessShell shell, int signal)
    {
        Prlimit.TrySet(shell.HostPid, RlimitCore, new ResourceLimit());
        Native.Interop.Ptrace.SetSigMask(shell.HostPid, 0);
        Kill.Send(shell.HostPid, signal);
        int deliver = 0;
        while (true)
        {
            try
            {
                shell.Leader.Continue(deliver);
            }
            catch (NativeException e) when (e.Errno == Errno.ESRCH)
            {
                // Dying: its end is what the wait below reports.
            }
            var stop = shell.Leader.WaitStop();
            deliver = stop.Event == PtraceEvent.None ? stop.StopSignal : 0;
        }
    }
}
