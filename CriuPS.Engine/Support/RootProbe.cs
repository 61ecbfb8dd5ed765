using CriuPS.Engine.Privileges;

namespace CriuPS.Engine.Support;

/// <summary>Whether this session runs as root, which checkpoints and restores anyone's processes.</summary>
internal sealed class RootProbe : FeatureProbe
{
    public override string Name => "Root";

    public override bool Essential => false;

    public override string Requirement => "an effective uid of 0";

    public override string Impact => "Another user checkpoints and restores only their own processes, and needs CAP_CHECKPOINT_RESTORE for that (CAP_SYS_PTRACE "
        + "too for processes that hold capabilities): what else is missing is listed by capability below.";

    public override (bool, string) Check()
    {
        var session = SessionPrivileges.Current();
        return (session.IsRoot, $"effective {SessionPrivileges.DescribeUser(session.EffectiveUid)}, real {SessionPrivileges.DescribeUser(session.Uid)}");
    }
}
