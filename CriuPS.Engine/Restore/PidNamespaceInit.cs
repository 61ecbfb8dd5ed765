using CriuPS.Native.Memory;
using System.Diagnostics;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Resources.Process;
using CriuPS.Engine.Support;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;
using Tmds.Linux;

namespace CriuPS.Engine.Restore;

/// <summary>
/// The init of a PID namespace made for a restore (-NewPidNamespace): criups-init, a program of the module (the
/// CriuPS.Init project, compiled ahead of time), PID 1 of the namespace. No code of ours plays init: the restore
/// host forks it with clone3(CLONE_NEWPID | CLONE_NEWNS), makes its mounts private (so that the /proc mounted for
/// the namespace stays there), hands it a pidfd of the engine for the tree to inherit, blocks every signal (the
/// init waits for them) and has it exec the program, which then reaps, forwards signals and ends with the root.
/// </summary>
internal static class PidNamespaceInit
{
    public const string ProgramName = "criups-init";

    // rt_sigtimedwait: what /proc/PID/syscall shows while the init waits for signals.
    private static readonly long WaitingForSignals = IArchitecture.Current.NumberOf(SystemCall.RtSigtimedwait);
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Refuses a restore into a new PID namespace before anything is created when the init program is missing or may not run.</summary>
    public static void CheckAvailable(string imagePath)
    {
        if (ModuleProgram.Find(ProgramName, out string problem) is null)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"Restoring into a new PID namespace needs the module's init program: {problem}.", imagePath,
                "Reinstall the module (build.ps1 publishes criups-init beside CriuPS.dll), or make the program executable.");
        }
    }

    /// <summary>
    /// Forks the init from the restore host <paramref name="vessel"/> (injected), with a pidfd of the engine at
    /// <paramref name="enginePidfd"/>, execs criups-init for the root <paramref name="rootPid"/> and returns its PID as we
    /// see it once it waits for signals, running and untraced. Its parent is our process with
    /// <paramref name="childOfCaller"/>, else the host, which dies next (init then goes to the system's reaper).
    /// </summary>
    public static int Start(Injection vessel, int vesselPid, int rootPid, int enginePidfd, bool childOfCaller, EngineLog log)
    {
        var clock = Stopwatch.StartNew();
        var program = ModuleProgram.PathOf(ProgramName);
        HandDownEnginePidfd(vessel.Caller, enginePidfd);
        ulong flags = (uint)(LibC.CLONE_NEWPID | LibC.CLONE_NEWNS | (childOfCaller ? LibC.CLONE_PARENT : 0));
        var task = Clone3.CreateNamespaceInit(vessel.Caller, vessel.Scratch, flags, childOfCaller ? 0 : Signals.SIGCHLD);
        try
        {
            Native.Interop.Ptrace.SetOptions(task.Tid, RestoreHost.TracingOptions | PtraceOptions.TraceExec);
            using (var memory = ProcessMemory.Open(task.Tid))
            {
                var init = Injection.Adopt(task, memory, vessel.Scratch.Range);
                var caller = init.Caller;
                var scratch = init.Scratch;
                scratch.Reset();
                // Private first: the namespace's /proc, mounted at the end, must not reach the host's mount namespace.
                caller.Checked("mount(MS_REC | MS_PRIVATE) of /", RemoteCall.Mount(scratch, null, "/", null, (ulong)(LibC.MS_REC | LibC.MS_PRIVATE), null));
                caller.Checked("rt_sigprocmask(SIG_SETMASK, all)", RemoteCall.RtSigprocmask(LibC.SIG_SETMASK, scratch.Put(ulong.MaxValue), Address.Null));
                var path = scratch.PutString(program);
                var argv = scratch.PutArray<ulong>(new[] { scratch.PutString(ProgramName).Value, scratch.PutString(rootPid.ToString(System.Globalization.CultureInfo.InvariantCulture)).Value, 0UL });
                var envp = scratch.PutArray<ulong>(new ulong[] { 0 });
                long exec = caller.CallExec(path, argv, envp);
                if (exec < 0)
                {
                    throw new NativeException($"execve of {program} in {task.Tid}", (int)-exec);
                }
            }
            task.Detach();
            WaitUntilWaiting(task.Tid, program);
            log.Detail($"PID namespace made: its init {task.Tid} ({ProgramName}, forked from {vesselPid}) waits for signals {clock.Elapsed.TotalMilliseconds:F1} ms after the fork");
            return task.Tid;
        }
        catch
        {
            Kill(task.Tid);
            throw;
        }
    }

    /// <summary>
    /// Opens a pidfd of the engine in the forker of a new PID namespace's init, at <paramref name="number"/> and kept
    /// across exec, for the init and the tree forked from it to inherit: inside, the engine has no PID to open one by.
    /// </summary>
    public static void HandDownEnginePidfd(RemoteSyscaller forker, int number)
    {
        int pidfd = forker.Checked("pidfd_open of the engine", RemoteCall.PidfdOpen(Environment.ProcessId));
        if (pidfd != number)
        {
            forker.Checked($"dup3 of the engine's pidfd to {number}", RemoteCall.Dup3(pidfd, number, closeOnExec: false));
            forker.Checked("close", RemoteCall.Close(pidfd));
        }
        else
        {
            forker.Checked("fcntl(F_SETFD) of the engine's pidfd", RemoteCall.SetDescriptorFlags(pidfd, 0));
        }
    }

    /// <summary>Mounts the namespace's own /proc, in the init's mount namespace, which every process of the tree shares.</summary>
    public static void MountProc(Injection init)
    {
        var scratch = init.Scratch;
        scratch.Reset();
        var proc = scratch.PutString("proc");
        init.Caller.Checked("mount of the PID namespace's /proc", RemoteCall.Mount(proc, scratch.PutString("/proc"), proc, (ulong)(LibC.MS_NOSUID | LibC.MS_NODEV | LibC.MS_NOEXEC), Address.Null));
    }

    /// <summary>Kills the init, which ends its namespace, and collects it when it is ours to collect.</summary>
    public static void Kill(int init)
    {
        Native.Interop.Kill.Send(init, Signals.SIGKILL);
        try
        {
            while (true)
            {
                Wait4.Wait(init, Wait4.WALL);
            }
        }
        catch (NativeException e) when (e.Errno == Errno.ECHILD)
        {
            // collected, or not our child
        }
    }

    // The program starts on its own (the runtime, then Main); the tree is forked from it once it waits for signals.
    private static void WaitUntilWaiting(int init, string program)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            string syscall;
            try
            {
                syscall = ProcFiles.ReadText($"/proc/{init}/syscall");
                if (ProcStat.Read(init).State is 'Z' or 'X')
                {
                    syscall = "gone";
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                syscall = "gone";
            }
            if (syscall == "gone")
            {
                throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"The PID namespace's init {init} ({program}) ended as it started.", init);
            }
            if (syscall.StartsWith($"{WaitingForSignals} ", StringComparison.Ordinal))
            {
                return;
            }
            if (deadline.Elapsed > StartTimeout)
            {
                throw new CheckpointException(CheckpointErrorKind.RestoreFailed,
                    $"The PID namespace's init {init} ({program}) did not wait for signals within {StartTimeout.TotalSeconds} s (it is in: {syscall.Trim()}).", init);
            }
            Thread.Sleep(1);
        }
    }
}
