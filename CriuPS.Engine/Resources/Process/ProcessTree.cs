using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Process;

/// <summary>
/// Who the process is in the process tree (pstree.img: pid, parent, group, session, threads) and which kernel
/// objects it shares (ids-PID.img); on restore, its session and process group.
/// </summary>
internal static class ProcessTree
{
    private static readonly string[] Namespaces = { "pid", "net", "ipc", "uts", "mnt", "user", "cgroup", "time" };

    public static void Dump(DumpedProcess process, DumpSession session, bool isRoot)
    {
        var pstree = process.Pstree;
        pstree.Pid = (uint)process.Pid;
        pstree.Ppid = isRoot ? 0 : (uint)process.Stat.PPid;
        pstree.Pgid = (uint)process.Stat.ProcessGroup;
        pstree.Sid = (uint)process.Stat.Session;
        pstree.Threads.Add(process.Threads.Select(t => (uint)t.Tid));

        var ids = process.Ids;
        ids.VmId = SharedObjectId(session, process.Pid, Kcmp.Vm, "vm");
        ids.FilesId = SharedObjectId(session, process.Pid, Kcmp.Files, "files");
        ids.FsId = SharedObjectId(session, process.Pid, Kcmp.Fs, "fs");
        ids.SighandId = SharedObjectId(session, process.Pid, Kcmp.Sighand, "sighand");
        var ns = Namespaces.ToDictionary(n => n, n => session.ObjectIds.For(ProcFiles.ReadLink($"/proc/{process.Pid}/ns/{n}")));
        ids.PidNsId = ns["pid"];
        ids.NetNsId = ns["net"];
        ids.IpcNsId = ns["ipc"];
        ids.UtsNsId = ns["uts"];
        ids.MntNsId = ns["mnt"];
        ids.UserNsId = ns["user"];
        ids.CgroupNsId = ns["cgroup"];
        ids.TimeNsId = ns["time"];
    }

    // Processes of the tree that share the object (kcmp says equal) share its id.
    private static uint SharedObjectId(DumpSession session, int pid, int kind, string name)
    {
        foreach (var other in session.Processes.Where(p => p.Pid != pid))
        {
            if (Kcmp.Compare(pid, other.Pid, kind) == 0)
            {
                return session.ObjectIds.For($"{name}:{other.Pid}");
            }
        }
        return session.ObjectIds.For($"{name}:{pid}");
    }

    /// <summary>
    /// Puts the process in its saved session and group. A session or group led by a process outside the image
    /// is only possible as a shell job (the caller's session).
    /// </summary>
    public static void RestoreSessionAndGroup(RestoreSession session, RestoringProcess process)
    {
        var pstree = process.Images.Pstree;
        var caller = process.Caller;
        if (pstree.Sid == pstree.Pid)
        {
            caller.Checked("setsid", SyscallNumber.Setsid);
            return;
        }
        if (!session.Options.ShellJob)
        {
            throw new CheckpointException(
                CheckpointErrorKind.ShellJobRequired,
                $"Process {pstree.Pid} belonged to session {pstree.Sid}, whose leader is not in the image; it can only be restored into your session as a shell job.",
                session.Options.ImagePath,
                "Restore with -ShellJob (and checkpoint such processes with -ShellJob), or start the process with setsid.");
        }
        if (pstree.Pgid == pstree.Pid)
        {
            caller.Checked("setpgid", SyscallNumber.Setpgid, 0, 0);
        }
    }
}
