using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Credentials;
using CriuPS.Engine.Resources.Ipc;
using CriuPS.Engine.Resources.Process;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Restore;

/// <summary>
/// Whether this session may restore an image, checked before anything is created: the saved PIDs need
/// CAP_CHECKPOINT_RESTORE, and whatever the image holds that differs from what a process started by this session
/// has (other ids, capabilities, a login uid, a root directory, seccomp filters) needs the capability that changes it.
/// What is the same is left as it is, so a user restores their own processes with CAP_CHECKPOINT_RESTORE alone.
/// </summary>
internal static class RestorePrivileges
{
    public static void Check(RestoreSession session)
    {
        var privileges = SessionPrivileges.Current();
        var images = session.Images;
        int root = images.Root.Pid;
        var obstacles = new List<(int Pid, Obstacle Obstacle)>();
        if (!privileges.CanCheckpointRestore)
        {
            obstacles.Add((root, new Obstacle("giving restored processes and threads their saved PIDs (clone3 with set_tid) and their executable (PR_SET_MM_MAP) "
                + "needs CAP_CHECKPOINT_RESTORE (or CAP_SYS_ADMIN)", Capability.CheckpointRestore)));
        }
        obstacles.AddRange(UtsNamespace.Obstacles(images, privileges).Select(o => (root, o)));
        obstacles.AddRange(TimeNamespaces.Obstacles(images, privileges).Select(o => (root, o)));
        obstacles.AddRange(IpcNamespace.Obstacles(images, privileges).Select(o => (root, o)));
        obstacles.AddRange(Resources.Mounts.MountNamespace.Obstacles(images, privileges).Select(o => (root, o)));
        obstacles.AddRange(Resources.Network.TreeNetwork.Obstacles(images, session.Options, privileges).Select(o => (root, o)));
        if (session.Options.NewPidNamespace && !privileges.Has(Capability.SysAdmin))
        {
            obstacles.Add((root, new Obstacle("restoring into a new PID namespace (clone3 with CLONE_NEWPID and CLONE_NEWNS, and the mount of its /proc) needs CAP_SYS_ADMIN",
                Capability.SysAdmin)));
        }
        foreach (var process in images.Processes)
        {
            var found = TaskAttributes.Obstacles(process.LeaderCore.Tc, privileges)
                .Concat(FsState.Obstacles(session, process, privileges))
                .Concat(process.Cores.SelectMany(c => ThreadObstacles(c.Core.ThreadCore, privileges)));
            obstacles.AddRange(found.DistinctBy(o => o.Reason).Select(o => (process.Pid, o)));
        }
        if (obstacles.Count > 0)
        {
            throw MissingPrivilege.Refusal($"Process {root} ({images.Root.Name}) cannot be restored by this session from '{images.Directory}'; nothing was created",
                root, obstacles, images.Directory, privileges);
        }
    }

    private static IEnumerable<Obstacle> ThreadObstacles(Images.Proto.ThreadCoreEntry? thread, SessionPrivileges privileges) =>
        thread is null ? [] : Seccomp.Obstacles(thread, privileges).Concat(thread.Creds is null ? [] : Creds.Obstacles(thread.Creds, privileges));
}
