using CriuPS.Engine.Privileges;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Support;

/// <summary>Whether the Yama security module's ptrace policy lets this session trace processes it did not start.</summary>
internal sealed class YamaPtraceScopeProbe : FeatureProbe
{
    public override string Name => "YamaPtraceScope";

    public override bool Essential => false;

    public override string Requirement => "kernel.yama.ptrace_scope 0, or 1 or 2 with CAP_SYS_PTRACE (or no Yama at all)";

    public override string Impact => "With ptrace_scope 1 a session may trace only the processes it started, with 2 only CAP_SYS_PTRACE may trace, and with 3 "
        + "nothing can be checkpointed until the next boot.";

    public override (bool, string) Check()
    {
        var session = SessionPrivileges.Current();
        string ptrace = session.Describe(Capability.SysPtrace);
        return session.YamaPtraceScope switch
        {
            null => (true, "no Yama security module (kernel.yama.ptrace_scope does not exist)"),
            0 => (true, "kernel.yama.ptrace_scope is 0"),
            1 or 2 when session.Has(Capability.SysPtrace) => (true, $"kernel.yama.ptrace_scope is {session.YamaPtraceScope}; {ptrace}"),
            1 => (false, $"kernel.yama.ptrace_scope is 1: only processes this session started can be checkpointed; {ptrace}"),
            int scope => (false, $"kernel.yama.ptrace_scope is {scope}; {ptrace}"),
        };
    }
}
