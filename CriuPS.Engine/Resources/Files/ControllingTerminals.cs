using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Process;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.RemoteSyscall;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// The controlling terminals of the restored sessions. A session leader whose terminal was one of the image's pairs
/// takes it again (TIOCSCTTY, injected right after its setsid, so that the processes it forks next inherit it as they
/// did at fork), and opens the session's /dev/tty descriptions, which only a process the terminal controls can open.
/// Once every process group exists, the terminal gets its foreground group back (TIOCSPGRP, which only a process of
/// the session may do).
/// </summary>
internal static class ControllingTerminals
{

    /// <summary>Gives <paramref name="leader"/>, a new session leader, its terminal and its session's /dev/tty descriptions.</summary>
    public static void Acquire(RestoreSession session, ProcessShell leader)
    {
        var ptys = PseudoTerminals.Of(session);
        var pair = ptys.ControllingPairs(session).FirstOrDefault(p => p.Master.Sid == (uint)leader.Pid);
        if (pair is null)
        {
            return;
        }
        var caller = leader.Injection.Caller;
        WithTerminal(session, caller, pair.Slave, fd =>
            caller.Checked($"ioctl(TIOCSCTTY) of /dev/pts/{pair.Index}", RemoteCall.Ioctl(fd, (uint)Terminal.SetControllingTerminalRequest, 0)));
        var files = ptys.ControllingTerminalFiles(session, pair.Master.Sid).ToList();
        if (files.Count > 0)
        {
            using var pidfd = Pidfd.Open(leader.HostPid);
            foreach (var file in files)
            {
                session.OpenFiles[file.Id] = OpenControllingTerminal(leader, pidfd, file);
            }
        }
        session.Log.Detail($"session {leader.Pid} has /dev/pts/{pair.Index} as its terminal again, with {files.Count} /dev/tty description(s)");
    }

    // /dev/tty opened by the leader, then taken over by the engine like every other description it restores.
    private static FileDescriptor OpenControllingTerminal(ProcessShell leader, FileDescriptor pidfd, FileEntry file)
    {
        var caller = leader.Injection.Caller;
        var scratch = leader.Injection.Scratch;
        scratch.Reset();
        int flags = (int)file.Tty.Flags;
        int theirs = caller.Checked("open of /dev/tty", RemoteCall.Open(scratch, "/dev/tty", (flags & O.ACCMODE) | O.NOCTTY | O.CLOEXEC));
        try
        {
            var ours = Pidfd.GetFd(pidfd, theirs);
            Fcntl.Call(ours, Fcntl.F_SETFL, flags & (O.NONBLOCK | O.APPEND | O.ASYNC));
            return ours;
        }
        finally
        {
            caller.Call(RemoteCall.Close(theirs));
        }
    }

    /// <summary>Gives every restored terminal its saved foreground process group, once every group exists.</summary>
    public static void SetForegroundGroups(RestoreSession session, IReadOnlyList<ProcessShell> shells)
    {
        foreach (var pair in PseudoTerminals.Of(session).ControllingPairs(session))
        {
            var leader = shells.FirstOrDefault(s => s.Pid == (int)pair.Master.Sid);
            int group = (int)pair.Master.Pgrp;
            if (leader is null || group == 0)
            {
                continue;
            }
            if (!shells.Any(s => s.Pstree.Pgid == (uint)group))
            {
                session.Log.Warning($"/dev/pts/{pair.Index}: its foreground process group {group} had no process left at the checkpoint; the session leader's group {leader.Pid} is in the foreground instead.");
                continue;
            }
            var caller = leader.Injection.Caller;
            var scratch = leader.Injection.Scratch;
            scratch.Reset();
            var value = scratch.Put(group);
            WithTerminal(session, caller, pair.Slave, fd =>
                caller.Checked($"ioctl(TIOCSPGRP, {group}) of /dev/pts/{pair.Index}", RemoteCall.Ioctl(fd, (uint)Terminal.SetForegroundGroupRequest, value.Value)));
        }
    }

    // Runs an ioctl in the process on the engine's description of the terminal, pulled in for the purpose.
    private static void WithTerminal(RestoreSession session, RemoteSyscaller caller, FileDescriptor terminal, Action<int> use)
    {
        int pidfd = caller.Checked("pidfd_open of the engine", session.EnginePidfdCall);
        try
        {
            int fd = caller.Checked("pidfd_getfd of a terminal", RemoteCall.PidfdGetfd(pidfd, terminal.Value));
            try
            {
                use(fd);
            }
            finally
            {
                caller.Call(RemoteCall.Close(fd));
            }
        }
        finally
        {
            caller.Call(RemoteCall.Close(pidfd));
        }
    }
}
