using CriuPS.Engine.Errors;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Process;

/// <summary>
/// A stand-in for the leader of a session or process group that has gone (it exited and was reaped) while its
/// session or group lives on in the tree. A process is born into its parent's session and may only join groups of
/// its own session, so such a session or group can only be made by a process with the leader's PID: the stand-in
/// takes it, makes the session (setsid) or the group (setpgid), passes it on, and exits, collected by its parent.
/// Members of the session are forked from it with CLONE_PARENT, which makes them children of the stand-in's own
/// parent, as they were saved. CRIU restores such layouts with helper tasks in the same way.
/// </summary>
internal sealed class StandInLeader
{
    private readonly ProcessShell parent;
    private readonly ProcessMemory memory;

    private StandInLeader(ProcessShell parent, Tracee task, ProcessMemory memory, Injection injection)
    {
        this.parent = parent;
        this.memory = memory;
        Task = task;
        Injection = injection;
    }

    /// <summary>The PID it stands in for, which it has (in its PID namespace).</summary>
    public int Pid { get; private init; }

    public Tracee Task { get; }

    public Injection Injection { get; }

    /// <summary>
    /// Forks the stand-in with PID <paramref name="pid"/> from <paramref name="parent"/> (sharing what
    /// <paramref name="cloneFlags"/> say) and has it lead a new session or, in its parent's session, a new group.
    /// </summary>
    public static StandInLeader Start(ProcessShell parent, int pid, ulong cloneFlags, bool newSession, AddressRange scratch, Action<int, Tracee> created)
    {
        if (parent.Pstree.CriupsNsPid.Count > 0)
        {
            // Its ids in the namespaces below the root's were never seen: it did not run when the tree was saved.
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"Process {parent.Pid} would fork a stand-in for the gone leader {pid} of its session or group, in a PID namespace below the tree root's, which CriuPS does not do.", parent.Pid);
        }
        var task = Clone3.Create(parent.Injection.Caller, parent.Injection.Scratch, pid, cloneFlags, Native.Interop.Signals.SIGCHLD);
        created(pid, task);
        var memory = ProcessMemory.Open(task.Tid);
        var standIn = new StandInLeader(parent, task, memory, Injection.Adopt(task, memory, scratch)) { Pid = pid };
        if (newSession)
        {
            standIn.Injection.Caller.Checked($"setsid in the stand-in for session {pid}", RemoteCall.Setsid());
        }
        else
        {
            standIn.Injection.Caller.Checked($"setpgid in the stand-in for group {pid}", RemoteCall.JoinProcessGroup(0));
        }
        return standIn;
    }

    /// <summary>Ends the stand-in: it exits and its parent collects it (whose SIGCHLD the tree builder drains).</summary>
    public void End()
    {
        try
        {
            Injection.Caller.Call(RemoteCall.ExitGroup(0));
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"The stand-in leader {Pid} did not exit.", Pid);
        }
        catch (TraceeGoneException)
        {
            memory.Dispose();
        }
        parent.Injection.Caller.Checked($"wait4 of the stand-in leader {Pid}", RemoteCall.Wait4(Pid, Wait4.WALL));
    }
}
