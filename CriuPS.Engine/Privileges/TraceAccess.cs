using CriuPS.Engine.Errors;
using CriuPS.Engine.Resources.Process;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Privileges;

/// <summary>
/// Why this session may not trace a process or read its /proc files, in the kernel's own terms (ptrace_may_access,
/// the capability rules of commoncap, Yama) and naming the capability each obstacle needs. Asked before anything is
/// frozen, and again when the kernel refuses a seize, to say what stands in the way instead of just EPERM.
/// </summary>
internal static class TraceAccess
{
    public static List<Obstacle> Obstacles(int pid, SessionPrivileges session)
    {
        var obstacles = new List<Obstacle>();
        var status = ProcStatus.Read(pid);
        bool ptrace = session.Has(Capability.SysPtrace);
        // A process in a user namespace of ours is ours to trace (we hold every capability there): the kernel
        // checks uids, dumpability and capabilities against the target's namespace.
        if (!ptrace && SharesUserNamespace(pid))
        {
            uint[] uids = status.Uids, gids = status.Gids;
            if (uids.Take(3).Any(u => u != session.Uid))
            {
                obstacles.Add(new($"it runs as {SessionPrivileges.DescribeUser(uids[1])}, and tracing another user's process needs CAP_SYS_PTRACE", Capability.SysPtrace));
            }
            else if (gids.Take(3).Any(g => g != session.Gid))
            {
                obstacles.Add(new($"it runs with group {gids[1]}, not this session's {session.Gid}, and tracing it needs CAP_SYS_PTRACE", Capability.SysPtrace));
            }
            else if (!IsDumpable(pid, status))
            {
                obstacles.Add(new("it is not dumpable (it runs a set-user-ID or set-group-ID program, or called prctl(PR_SET_DUMPABLE, 0)), "
                    + "and tracing such a process needs CAP_SYS_PTRACE", Capability.SysPtrace));
            }
            ulong extra = status.CapPermitted & ~session.Permitted;
            if (extra != 0)
            {
                obstacles.Add(new($"it holds capabilities this session lacks ({Capabilities.Describe(extra)}), and tracing it needs CAP_SYS_PTRACE", Capability.SysPtrace));
            }
        }
        uint? owner = ProcFilesOwner(pid);
        // /proc/PID/mem is opened for writing too (injection needs it), which CAP_DAC_READ_SEARCH does not allow.
        if (owner is { } o && o != session.EffectiveUid && !session.Has(Capability.DacOverride))
        {
            obstacles.Add(new($"its /proc files (open descriptors, mapped files, memory) belong to {SessionPrivileges.DescribeUser(o)}, and opening them needs "
                + "CAP_DAC_OVERRIDE", Capability.DacOverride));
        }
        if (status.SeccompMode == (int)Seccomp.ModeFilter && !session.Has(Capability.SysAdmin))
        {
            obstacles.Add(new("it runs under seccomp filters, which only CAP_SYS_ADMIN may read (PTRACE_SECCOMP_GET_FILTER) and suspend while CriuPS works in the process "
                + "(PTRACE_O_SUSPEND_SECCOMP)", Capability.SysAdmin));
        }
        switch (session.YamaPtraceScope)
        {
            case 1 when !ptrace && !IsDescendant(pid):
                obstacles.Add(new("kernel.yama.ptrace_scope is 1 (a process may trace only its descendants) and it was not started by this session: "
                    + "tracing it needs CAP_SYS_PTRACE, or ptrace_scope 0", Capability.SysPtrace));
                break;
            case 2 when !ptrace:
                obstacles.Add(new("kernel.yama.ptrace_scope is 2: only CAP_SYS_PTRACE may trace", Capability.SysPtrace));
                break;
            case >= 3:
                obstacles.Add(new("kernel.yama.ptrace_scope is 3: no process may be traced until the next boot", []));
                break;
        }
        return obstacles;
    }

    /// <summary>The InsufficientPrivilege error for a tree whose processes (by PID) meet obstacles.</summary>
    public static CheckpointException Refusal(int root, IReadOnlyList<(int Pid, Obstacle Obstacle)> obstacles, SessionPrivileges session, Exception? inner = null) =>
        MissingPrivilege.Refusal($"Process {root} ({ProcStat.Read(root).Comm}) cannot be checkpointed by this session; nothing was frozen", root, obstacles, root, session, inner);

    /// <summary>
    /// What to say when the kernel refused to let us seize a thread: the obstacles, when some explain it, else that the
    /// process cannot be traced for a reason privileges do not lift (a tracer came first, it died, a security module).
    /// </summary>
    public static CheckpointException SeizeRefused(int pid, int tid, NativeException e)
    {
        var session = SessionPrivileges.Current();
        var obstacles = e.Errno == Errno.EPERM && ProcFiles.Exists(pid) ? Obstacles(pid, session) : [];
        return obstacles.Count > 0
            ? Refusal(pid, obstacles.Select(o => (pid, o)).ToList(), session, e)
            : new CheckpointException(
                CheckpointErrorKind.NotTraceable,
                $"Cannot trace process {pid} (thread {tid}): {Errno.Describe(e.Errno)}. It may be traced by a debugger already, be a zombie, "
                + $"or a security module (AppArmor, SELinux) may forbid it; {MissingPrivilege.DescribeSession(session)}.",
                pid,
                "Detach any debugger (gdb, strace), and check the security module's log.",
                e);
    }

    // The files of /proc/PID that only their owner may read (fd, map_files...) belong to root while the process is
    // not dumpable (task_dump_owner; /proc/PID itself keeps its owner); a root process tells nothing.
    private static bool IsDumpable(int pid, ProcStatus status) => status.Uids[1] == 0 || ProcFilesOwner(pid) != 0;

    private static uint? ProcFilesOwner(int pid) => FileStatus.OfEntry($"/proc/{pid}/fd")?.Uid;

    private static bool SharesUserNamespace(int pid)
    {
        try
        {
            return ProcFiles.ReadLink($"/proc/{pid}/ns/user") == ProcFiles.ReadLink("/proc/self/ns/user");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true; // unreadable: it is not ours to trace in any namespace
        }
    }

    private static bool IsDescendant(int pid)
    {
        try
        {
            for (int p = pid; p > 1;)
            {
                p = ProcStat.Read(p).PPid;
                if (p == Environment.ProcessId)
                {
                    return true;
                }
            }
        }
        catch (IOException)
        {
            // an ancestor exited meanwhile: the process was reparented away from us
        }
        return false;
    }
}
