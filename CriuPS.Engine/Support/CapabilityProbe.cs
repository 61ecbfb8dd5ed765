using CriuPS.Engine.Privileges;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Support;

/// <summary>
/// Whether this session holds one capability in its effective set (CapEff of its status), and what CriuPS cannot do
/// without it. Named after the capability: CAP_SYS_PTRACE.
/// </summary>
internal sealed class CapabilityProbe(Capability capability, string impact, string requirement = "") : FeatureProbe
{
    public override string Name => capability.KernelName();

    public override bool Essential => false;

    public override string Requirement => $"{capability.KernelName()} in the effective set of the PowerShell process (root has it){requirement}";

    public override string Impact => impact;

    public override (bool, string) Check()
    {
        var session = SessionPrivileges.Current();
        if (session.Has(capability))
        {
            return (true, $"{capability.KernelName()} is effective ({SessionPrivileges.DescribeUser(session.EffectiveUid)})");
        }
        string permitted = capability.In(session.Permitted) ? "permitted but not effective" : "neither permitted nor effective";
        return (false, $"{capability.KernelName()} is {permitted}: {MissingPrivilege.DescribeSession(session)}");
    }
}
