using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Process;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;
using Tmds.Linux;

namespace CriuPS.Engine.Restore;

/// <summary>
/// The vessel of a restore: a small process (sleep) that we seize and make fork, with clone3 and set_tid, a child
/// carrying the saved PID. The child is what we then turn into the restored process; the host itself is killed
/// as soon as the child exists. With -NewPidNamespace the vessel is the init of a new PID namespace instead
/// (<see cref="PidNamespaceInit"/>), which lives on as the restored tree's parent and is let go once the tree runs.
/// </summary>
internal sealed class RestoreHost : IDisposable
{
    // Every restored task inherits these; with seccomp suspended, filters installed early cannot stop what follows.
    // Suspending needs CAP_SYS_ADMIN: without it, images with filters are refused before anything is created.
    private const PtraceOptions Options = PtraceOptions.TraceSysGood | PtraceOptions.TraceFork | PtraceOptions.TraceClone | PtraceOptions.ExitKill;
    private static readonly string[] SleepPaths = { "/bin/sleep", "/usr/bin/sleep" };

    /// <summary>The sleep program hosts (and other short-lived helpers of a restore) run.</summary>
    public static string SleepProgram => SleepPaths.First(File.Exists);

    private readonly Tracee tracee;
    private readonly ProcessMemory memory;
    private Injection? forking;
    private bool killed;

    private RestoreHost(Tracee tracee, ProcessMemory memory, bool isNamespaceInit = false)
    {
        this.tracee = tracee;
        this.memory = memory;
        IsNamespaceInit = isNamespaceInit;
    }

    public int Pid => tracee.Tid;

    /// <summary>Whether this host is the init of the restore's PID namespace, which the restored root is a child of.</summary>
    public bool IsNamespaceInit { get; }

    /// <summary>The ptrace options of a host, and of every task forked from it.</summary>
    internal static PtraceOptions TracingOptions => SessionPrivileges.Current().Has(Capability.SysAdmin) ? Options | PtraceOptions.SuspendSeccomp : Options;

    /// <summary>Starts the host; in its own session unless the restore is a shell job (which joins the caller's).</summary>
    public static RestoreHost Start(bool shellJob, EngineLog log)
    {
        int pid = Spawn(shellJob);
        try
        {
            return Seize(pid, log);
        }
        catch
        {
            Native.Interop.Kill.Send(pid, Signals.SIGKILL);
            Wait4.Wait(pid, Wait4.WALL);
            throw;
        }
    }

    /// <summary>Starts the process a host is made of (a sleep, our child), not yet seized.</summary>
    public static int Spawn(bool shellJob)
    {
        using (InheritedCapabilities.PassOn())
        {
            return PosixSpawn.Spawn(SleepProgram, new[] { "sleep", "1000000" }, newSession: !shellJob);
        }
    }

    /// <summary>
    /// Makes a host of a process <see cref="Spawn"/> started, here or in the caller that handed it to criups-engine
    /// (<see cref="RestoreOptions.HostProcessId"/>); whoever started it kills it if this fails.
    /// </summary>
    public static RestoreHost Seize(int pid, EngineLog log)
    {
        var tracee = Tracee.Seize(pid, pid, TracingOptions);
        tracee.InterruptAndWait();
        log.Detail($"host process {pid} ({SleepProgram}) seized");
        return new RestoreHost(tracee, ProcessMemory.Open(pid));
    }

    /// <summary>
    /// Starts the init of a new PID namespace (<see cref="PidNamespaceInit"/>) and makes it the host: the tree is
    /// then forked from it, the root at <paramref name="rootPid"/> inside.
    /// </summary>
    public static RestoreHost StartNamespaceInit(int rootPid, int enginePidfd, bool childOfCaller, ByteCount scratchSize, EngineLog log)
    {
        int init;
        using (var vessel = Start(shellJob: false, log))
        {
            var injection = vessel.BeginInjection([], scratchSize);
            init = PidNamespaceInit.Start(injection, vessel.Pid, rootPid, enginePidfd, childOfCaller, log);
        }
        try
        {
            var tracee = Tracee.Seize(init, init, TracingOptions);
            tracee.InterruptAndWait();
            return new RestoreHost(tracee, ProcessMemory.Open(init), isNamespaceInit: true);
        }
        catch
        {
            PidNamespaceInit.Kill(init);
            throw;
        }
    }

    /// <summary>
    /// Lets the namespace's init go once the restored tree is whole: it mounts the namespace's own /proc (until now the
    /// restored processes saw the engine's, through which they open what the engine holds for them), closes the
    /// engine's pidfd that the tree inherited from it, leaves our code and waits for signals again.
    /// </summary>
    public void Release(int enginePidfd)
    {
        if (!IsNamespaceInit || forking is null)
        {
            throw new InvalidOperationException("only the init of a PID namespace that forked the tree is let go");
        }
        PidNamespaceInit.MountProc(forking);
        forking.Caller.Checked("close of the engine's pidfd", RemoteCall.Close(enginePidfd));
        forking.End(forking.Caller.OriginalRegs);
        tracee.Detach();
        killed = true; // it belongs to its namespace now: nothing of ours to kill
    }

    /// <summary>
    /// Forks a child with the ids <paramref name="levels"/> (<see cref="PidLevels"/>), its injection area at a place
    /// free in the layouts of every process that will descend from it. With <paramref name="childOfCaller"/> the
    /// child's parent is our own process (CLONE_PARENT), else the host. With <paramref name="newPidNamespace"/> the
    /// child is the init of a new PID namespace (a root that was its namespace's init). With
    /// <paramref name="enginePidfd"/> it inherits a pidfd of the engine at that number, for the processes of the tree
    /// in PID namespaces where the engine has no PID.
    /// </summary>
    public (Tracee Child, AddressRange Scratch) ForkChild(IReadOnlyList<int> levels, bool newPidNamespace, int? enginePidfd, IReadOnlyList<VmaEntry> savedLayout, ByteCount scratchSize, bool childOfCaller)
    {
        var injection = BeginInjection(savedLayout, scratchSize);
        forking = injection;
        ulong flags = (childOfCaller ? (uint)LibC.CLONE_PARENT : 0) | (newPidNamespace ? (uint)LibC.CLONE_NEWPID : 0);
        if (enginePidfd is int pidfd)
        {
            PidNamespaceInit.HandDownEnginePidfd(injection.Caller, pidfd);
        }
        // With CLONE_PARENT the kernel takes the exit signal from the host (SIGCHLD) and refuses another.
        var child = Clone3.Create(injection.Caller, injection.Scratch, levels, flags, childOfCaller ? 0 : Signals.SIGCHLD);
        return (child, injection.Scratch.Range);
    }

    // The injection area must not collide with anything the restored process will map: look for a gap in its layout.
    private Injection BeginInjection(IReadOnlyList<VmaEntry> savedLayout, ByteCount size)
    {
        var hostLayout = SmapsParser.Read(Pid);
        var taken = savedLayout.Select(v => new AddressRange(v.Start, v.End)).Concat(hostLayout.Select(v => v.Range));
        var guard = new ByteCount((ulong)Page.Size * 16);
        var at = FreeSpace.HighestFit(taken, size, guard, new Address(Mman.TaskSize), new Address(Mman.MinAddress))
            ?? throw new InvalidOperationException("no room for the injection area in the restored process's address space");
        return Injection.Begin(tracee, memory, hostLayout, size, at);
    }

    public void Kill()
    {
        if (killed)
        {
            return;
        }
        killed = true;
        if (IsNamespaceInit)
        {
            PidNamespaceInit.Kill(Pid);
            return;
        }
        Native.Interop.Kill.Send(Pid, Signals.SIGKILL);
        try
        {
            while (true)
            {
                Wait4.Wait(Pid, Wait4.WALL);
            }
        }
        catch (NativeException e) when (e.Errno == Errno.ECHILD)
        {
            // reaped
        }
    }

    public void Dispose()
    {
        Kill();
        memory.Dispose();
    }
}
