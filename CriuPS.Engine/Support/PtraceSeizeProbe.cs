using CriuPS.Engine.Privileges;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;

namespace CriuPS.Engine.Support;

/// <summary>Seizes and interrupts a throwaway process, as every checkpoint does with its targets.</summary>
internal sealed class PtraceSeizeProbe : FeatureProbe
{
    public override string Name => "PtraceSeize";

    public override bool Essential => true;

    public override string Requirement =>
        "PTRACE_SEIZE and PTRACE_INTERRUPT (Linux 3.4+) over the target: its owner or CAP_SYS_PTRACE, and a Yama ptrace_scope that allows it";

    public override string Impact => "Nothing can be checkpointed or restored: dumps stop and inspect processes with ptrace, and restores build the new process with it.";

    public override (bool, string) Check()
    {
        var session = SessionPrivileges.Current();
        string scope = session.YamaPtraceScope is { } yama ? $"; Yama ptrace_scope {yama}" : "";
        using var child = ProbeChild.Start();
        try
        {
            var tracee = Tracee.Seize(child.Pid, child.Pid, PtraceOptions.ExitKill);
            tracee.InterruptAndWait();
        }
        catch (NativeException e)
        {
            return (false, $"{e.Message}{scope}; {session.Describe(Capability.SysPtrace)}");
        }
        return (true, $"seized and interrupted a test process (pid {child.Pid}){scope}");
    }
}
