using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Resources.Cgroups;
using CriuPS.Engine.Resources.Cpu;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Resources.Mounts;
using CriuPS.Engine.Resources.Process;
using CriuPS.Engine.Resources.Sockets;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Restore;

/// <summary>
/// What a restore checks once the images are read and before anything is created (the restore's step "checks"):
/// the privileges and the CPU it needs, the session and the PIDs the tree takes, and what each resource module
/// refuses up front; a check that fails leaves nothing to undo.
/// </summary>
internal static class RestoreChecks
{
    public static void CheckCanRestore(RestoreSession session)
    {
        RestorePrivileges.Check(session);
        CpuFit.Check(session);
        var images = session.Images;
        var root = images.Tree[0];
        if (root.Sid != root.Pid && !session.Options.ShellJob)
        {
            throw new CheckpointException(
                CheckpointErrorKind.ShellJobRequired,
                $"Process {root.Pid} belonged to session {root.Sid}, whose leader is not in the image; it can only be restored into your session as a shell job.",
                session.Options.ImagePath,
                "Restore with -ShellJob (and checkpoint such processes with -ShellJob), or start the process with setsid.");
        }
        bool newNamespace = session.Options.NewPidNamespace || PidLevels.IsNamespaceInit(root, parent: null);
        if (newNamespace)
        {
            CheckNewPidNamespace(session);
        }
        // Stand-ins take the PIDs of gone session and group leaders for a moment. A new namespace has every PID free.
        var ids = newNamespace ? []
            : images.Processes.SelectMany(p => p.Cores.Select(c => c.Tid)).Concat(images.Zombies.Select(z => z.Pid)).Concat(ProcessTree.StandInPids(images.Tree));
        foreach (int id in ids)
        {
            // Most of these PIDs are free: asked first, each is one stat, not a failed read of its stat and a thrown
            // exception (65 of them for 64 threads: the step "checks" took 4.3 ms, 2.3 without).
            if (!ProcFiles.Exists(id))
            {
                continue;
            }
            WaitForZombieToGo(id, session.Log);
            if (ProcFiles.Exists(id))
            {
                var holder = ProcStat.Read(id);
                throw new CheckpointException(CheckpointErrorKind.PidInUse,
                    $"PID {id} is in use by '{holder.Comm}'{(holder.State == 'Z' ? " (a zombie)" : "")}; the restored process needs it.",
                    id,
                    $"Stop process {id}, or restore once it has exited.");
            }
        }
        InetSocketRestore.Check(session);
        CgroupRestore.Check(session);
        HugetlbMemory.CheckPools(session);
        MountNamespace.CheckCanRestore(session); // after the cgroups: it may bind one the restore makes
        foreach (var process in images.Processes)
        {
            AddressSpace.CheckMappedFiles(session, process);
            var pages = OpenedPages.Of(session, process); // checks the chain of parents and the files' sizes
            Vdso.Check(images.Directory, process, pages);
        }
    }

    // What a restore into a new PID namespace needs, and what it does not do yet, before anything is created.
    private static void CheckNewPidNamespace(RestoreSession session)
    {
        var options = session.Options;
        var root = session.Images.Tree[0];
        if (options.NewPidNamespace && PidLevels.IsNamespaceInit(root, parent: null))
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"Process {root.Pid} of '{options.ImagePath}' was the init of its PID namespace (PID 1), and is restored as the init of a new one: -NewPidNamespace would put another init above it.",
                options.ImagePath, "Restore without -NewPidNamespace: the image comes back in a PID namespace of its own anyway.");
        }
        if (options.NewPidNamespace)
        {
            PidNamespaceInit.CheckAvailable(options.ImagePath);
        }
        string? refused = options.LazyPages ? "-LazyPages" : options.ShellJob ? "-ShellJob" : null;
        if (refused is not null)
        {
            string how = options.NewPidNamespace ? "-NewPidNamespace" : $"an image whose root was the init of its PID namespace ({root.Pid})";
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"{how} cannot be combined with {refused} yet: the restored processes would need the engine's PIDs for them.", options.ImagePath,
                $"Restore without {refused}.");
        }
    }

    // A process killed by a dump stays a zombie until its parent (often init) reaps it: give that a moment.
    private static void WaitForZombieToGo(int pid, EngineLog log)
    {
        if (!IsZombie(pid))
        {
            return;
        }
        FileDescriptor pidfd;
        try
        {
            pidfd = Pidfd.Open(pid);
        }
        catch (NativeException e) when (e.Errno == Errno.ESRCH)
        {
            return; // reaped meanwhile
        }
        using (pidfd)
        {
            // A zombie's PID is not given to anyone else: the pidfd is the zombie's unless it was reaped just now.
            if (IsZombie(pid))
            {
                log.Detail($"PID {pid} is still a zombie; waiting for its parent to reap it");
                Pidfd.WaitReaped(pidfd, TimeSpan.FromSeconds(10));
            }
        }
    }

    private static bool IsZombie(int pid)
    {
        try
        {
            return ProcStat.Read(pid).State == 'Z';
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false; // gone
        }
    }
}
