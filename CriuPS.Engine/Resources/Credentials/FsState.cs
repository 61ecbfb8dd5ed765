using CriuPS.Engine.Dump;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Credentials;

/// <summary>Working directory, root directory (either may have been deleted since it was entered) and umask (fs-PID.img).</summary>
internal static class FsState
{
    public static void Dump(DumpedProcess process, DumpSession session)
    {
        process.Fs.CwdId = RegularFiles.ForLink(session, $"/proc/{process.Pid}/cwd", O.RDONLY | O.DIRECTORY);
        process.Fs.RootId = RegularFiles.ForLink(session, $"/proc/{process.Pid}/root", O.RDONLY | O.DIRECTORY);
        process.Fs.Umask = process.Status.Umask;
    }

    /// <summary>What this session lacks to restore a process's root directory: chroot needs CAP_SYS_CHROOT.</summary>
    public static IEnumerable<Obstacle> Obstacles(RestoreSession session, ProcessImages process, SessionPrivileges privileges)
    {
        var root = session.Images.File(process.Fs.RootId).Reg.Name;
        if (root != "/" && !privileges.Has(Capability.SysChroot))
        {
            yield return new($"it ran chrooted in '{root}', and chroot needs CAP_SYS_CHROOT", Capability.SysChroot);
        }
    }

    // The path a directory is entered by: its own, or for a deleted one, the engine's descriptor of it created again.
    private static string PathOf(RestoreSession session, uint fileId)
    {
        var reg = session.Images.File(fileId).Reg;
        return GhostFiles.GhostOf(session.Images, fileId) is uint ghost ? GhostFiles.PathInEngine(session, reg, ghost) : reg.Name;
    }

    public static void Restore(RestoreSession session, RestoringProcess process)
    {
        var caller = process.Caller;
        var scratch = process.Injection.Scratch;
        var fs = process.Images.Fs;
        // Both paths are as seen from outside the process: the working directory is entered before the root
        // changes (chroot leaves it where it is), when its path still means what it says.
        var cwd = session.Images.File(fs.CwdId).Reg.Name;
        scratch.Reset();
        long result = caller.Call(RemoteCall.Chdir(scratch, PathOf(session, fs.CwdId)));
        if (result == -Errno.EACCES)
        {
            throw PathAccess.Denied(cwd, $"the working directory of process {process.Pid}", Faccessat.Search);
        }
        if (result < 0)
        {
            throw new Errors.CheckpointException(
                Errors.CheckpointErrorKind.ImageIncompatible,
                $"The working directory '{cwd}' of process {process.Pid} is not available: {Errno.Describe((int)-result)}.",
                cwd,
                "Create the directory, or restore where the same paths exist.");
        }
        var root = session.Images.File(fs.RootId).Reg.Name;
        if (root != "/")
        {
            scratch.Reset();
            caller.Checked($"chroot({root})", RemoteCall.Chroot(scratch, PathOf(session, fs.RootId)));
        }
        if (fs.HasUmask)
        {
            caller.Checked("umask", RemoteCall.Umask(fs.Umask));
        }
    }
}
