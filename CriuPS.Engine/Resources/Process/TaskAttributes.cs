using CriuPS.Engine.Dump;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Credentials;
using CriuPS.Engine.Resources.Signals;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Process;

/// <summary>
/// Process-wide attributes of the task core: state, personality, name, flags, limits, timers, shared pending
/// signals, OOM score, login uid and child-subreaper.
/// </summary>
internal static class TaskAttributes
{
    public const uint TaskAlive = 1, TaskStopped = 3;
    private const uint UnsetLoginUid = uint.MaxValue;
    private const string LoginUidPath = "/proc/self/loginuid";

    /// <summary>MEMBARRIER_CMD_GET_REGISTRATIONS (Linux 6.3): which MEMBARRIER_CMD_REGISTER_* the process issued.</summary>
    private const ulong MembarrierGetRegistrations = 1 << 9;

    public static void Dump(DumpedProcess process)
    {
        var tc = process.LeaderCore.Tc;
        var caller = process.Injection.Caller;
        tc.TaskState = process.Frozen.WasStopped ? TaskStopped : TaskAlive;
        tc.ExitCode = 0;
        tc.Personality = ProcFiles.Personality(process.Pid);
        tc.Flags = process.Stat.Flags;
        tc.BlkSigset = process.Frozen.OriginalMasks[process.Pid];
        tc.Comm = process.Stat.Comm;
        tc.Timers = IntervalTimers.Dump(process);
        PosixTimers.Dump(process, tc.Timers);
        tc.Rlimits = ResourceLimits.Dump(process);
        tc.SignalsS = PendingSignals.Read(process.Pid, shared: true);
        tc.OomScoreAdj = ProcFiles.OomScoreAdj(process.Pid);
        tc.Loginuid = ProcFiles.LoginUid(process.Pid);
        process.Injection.Scratch.Reset();
        var subreaper = process.Injection.Scratch.Reserve(4);
        caller.Checked("prctl(PR_GET_CHILD_SUBREAPER)", RemoteCall.GetChildSubreaper(subreaper));
        tc.ChildSubreaper = process.Memory.Read<int>(subreaper) != 0;
        // Runtimes such as .NET register for expedited membarrier(2) and fail without it after a restore.
        long registrations = caller.Call(RemoteCall.Membarrier(MembarrierGetRegistrations));
        if (registrations > 0)
        {
            tc.MembarrierRegistrationMask = (uint)registrations;
        }
    }

    public static void Restore(RestoreSession session, RestoringProcess process)
    {
        var tc = process.Images.LeaderCore.Tc;
        var caller = process.Caller;
        if (tc.Personality != ProcFiles.Personality(process.HostPid))
        {
            caller.Checked("personality", RemoteCall.Personality(tc.Personality));
        }
        // Each bit of the mask is a MEMBARRIER_CMD_REGISTER_* command: issuing it again registers the process.
        for (int bit = 0; tc.HasMembarrierRegistrationMask && bit < 32; bit++)
        {
            if ((tc.MembarrierRegistrationMask & (1u << bit)) != 0)
            {
                caller.Checked($"membarrier(register {1u << bit:x})", RemoteCall.Membarrier(1UL << bit));
            }
        }
        if (tc.ChildSubreaper)
        {
            caller.Checked("prctl(PR_SET_CHILD_SUBREAPER)", RemoteCall.SetChildSubreaper());
        }
        if (tc.HasOomScoreAdj && tc.OomScoreAdj != ProcFiles.OomScoreAdj(process.HostPid))
        {
            RestoreOomScoreAdj(process.HostPid, tc.OomScoreAdj);
        }
        if (tc.HasLoginuid && tc.Loginuid != ProcFiles.LoginUid(process.HostPid))
        {
            RestoreLoginUid(process, tc.Loginuid);
        }
        ResourceLimits.Restore(process.HostPid, tc.Rlimits, session.Log);
        IntervalTimers.Restore(process);
        PendingSignals.Queue(process, caller, tc.SignalsS, tid: null);
    }

    /// <summary>
    /// What this session lacks to restore the attributes: a restored process starts with the session's login uid,
    /// and another one needs CAP_AUDIT_CONTROL (unless none is set yet).
    /// </summary>
    public static IEnumerable<Obstacle> Obstacles(TaskCoreEntry tc, SessionPrivileges session)
    {
        if (tc.HasLoginuid && File.Exists(LoginUidPath) && ProcFiles.LoginUid(Environment.ProcessId) is var own
            && tc.Loginuid != own && own != UnsetLoginUid && !session.Has(Capability.AuditControl))
        {
            yield return new($"its login uid is {tc.Loginuid}, not this session's {own}, and setting it needs CAP_AUDIT_CONTROL", Capability.AuditControl);
        }
    }

    // Lowering the score below the lowest a privileged writer set (the session's, inherited) needs CAP_SYS_RESOURCE.
    private static void RestoreOomScoreAdj(int pid, int score)
    {
        try
        {
            File.WriteAllText($"/proc/{pid}/oom_score_adj", score.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        catch (UnauthorizedAccessException e)
        {
            throw MissingPrivilege.For(Capability.SysResource,
                $"Setting the OOM score adjustment of process {pid} to {score}, below this session's {ProcFiles.OomScoreAdj(Environment.ProcessId)},", pid, e);
        }
    }

    // Only a process itself may write its /proc/self/loginuid.
    private static void RestoreLoginUid(RestoringProcess process, uint loginUid)
    {
        var caller = process.Caller;
        var scratch = process.Injection.Scratch;
        scratch.Reset();
        var path = scratch.PutString(LoginUidPath);
        var text = System.Text.Encoding.ASCII.GetBytes(loginUid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var data = scratch.Put(text);
        int fd = caller.Checked("open(/proc/self/loginuid)", RemoteCall.Open(path, O.WRONLY));
        long written = caller.Call(RemoteCall.Write(fd, data, new ByteCount((ulong)text.Length)));
        caller.Checked("close", RemoteCall.Close(fd));
        if (written < 0)
        {
            throw new NativeException($"write of loginuid {loginUid} in {process.Pid}", (int)-written);
        }
    }
}
