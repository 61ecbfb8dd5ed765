using CriuPS.Engine.Errors;
using CriuPS.Engine.Privileges;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Tests.Privileges;

public class MissingPrivilegeTests
{
    private static readonly SessionPrivileges User = CredsObstaclesTests.Session(54321, Capability.CheckpointRestore.Bit());

    [Fact]
    public void ARefusalListsEachObstacleOnceWithTheProcessesItConcerns()
    {
        var shared = new Obstacle("its /proc files belong to uid 0 (root), and opening them needs CAP_DAC_OVERRIDE", Capability.DacOverride);
        var obstacles = new List<(int, Obstacle)> { (10, new Obstacle("it runs under seccomp filters", Capability.SysAdmin)) };
        obstacles.AddRange(Enumerable.Range(11, 7).Select(pid => (pid, shared)));
        var error = MissingPrivilege.Refusal("Process 10 cannot be checkpointed", 10, obstacles, 10, User);
        Assert.Equal(CheckpointErrorKind.InsufficientPrivilege, error.Kind);
        Assert.Equal(10, error.Target);
        var lines = error.Message.Split(Environment.NewLine);
        Assert.Equal("Process 10 cannot be checkpointed (this session runs as uid 54321 with CAP_CHECKPOINT_RESTORE):", lines[0]);
        Assert.Equal(" - it runs under seccomp filters", lines[1]);
        Assert.Equal($" - each of processes 11, 12, 13, 14, 15 and 2 more: {shared.Reason}", lines[2]);
        Assert.Equal(3, lines.Length);
        // The command gives what is needed and keeps what the session has.
        Assert.Contains("start PowerShell with CAP_SYS_ADMIN and CAP_DAC_OVERRIDE as ambient capabilities", error.RecommendedAction);
        Assert.Contains("--inh-caps=+dac_override,+sys_admin,+checkpoint_restore --ambient-caps=+dac_override,+sys_admin,+checkpoint_restore", error.RecommendedAction);
    }

    [Fact]
    public void TooManyCapabilitiesAreNotSpeltOut()
    {
        var error = MissingPrivilege.Refusal("Image refused", 1, [(1, new Obstacle("it held capabilities", Enum.GetValues<Capability>().Take(6).ToList()))], "/img", User);
        Assert.Equal("Run as root: 6 capabilities are missing.", error.RecommendedAction);
    }

    [Fact]
    public void ASessionIsDescribedByItsUserAndCapabilities()
    {
        Assert.StartsWith("this session runs as uid 54321", MissingPrivilege.DescribeSession(User), StringComparison.Ordinal);
        Assert.EndsWith("with CAP_CHECKPOINT_RESTORE", MissingPrivilege.DescribeSession(User), StringComparison.Ordinal);
        Assert.EndsWith("with no capabilities", MissingPrivilege.DescribeSession(CredsObstaclesTests.Session(54321, 0)), StringComparison.Ordinal);
        var root = CredsObstaclesTests.Session(0, ((1UL << 41) - 1) & ~Capability.SysResource.Bit());
        Assert.Equal("this session runs as uid 0 (root) with every capability but CAP_SYS_RESOURCE", MissingPrivilege.DescribeSession(root));
    }
}
