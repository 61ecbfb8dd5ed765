using CriuPS.Engine.Errors;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Privileges;

/// <summary>InsufficientPrivilege errors: what needs which capability, what this session has, and how to give it what it lacks.</summary>
internal static class MissingPrivilege
{
    /// <summary>"{<paramref name="action"/>} needs CAP_X; this session runs as uid U with ..." for one capability.</summary>
    public static CheckpointException For(Capability capability, string action, object target, Exception? inner = null) =>
        Error($"{action} needs {capability.KernelName()}; {DescribeSession(SessionPrivileges.Current())}.", target, [capability], inner);

    /// <summary>
    /// "{<paramref name="subject"/>} (this session runs as ...):" and one line per obstacle, naming the processes it
    /// stands in the way of (none for <paramref name="root"/> alone); the recommended action grants every capability
    /// that lifts one.
    /// </summary>
    public static CheckpointException Refusal(string subject, int root, IReadOnlyList<(int Pid, Obstacle Obstacle)> obstacles, object target, SessionPrivileges session,
        Exception? inner = null)
    {
        const int Named = 5;
        static string Processes(List<int> pids) => (pids.Count == 1 ? "process " : "each of processes ") + string.Join(", ", pids.Take(Named))
            + (pids.Count > Named ? $" and {pids.Count - Named} more" : "") + ": ";
        var reasons = obstacles.GroupBy(o => o.Obstacle.Reason, o => o.Pid)
            .Select(g => (g.Distinct().ToList() is var pids && pids is [var only] && only == root ? "" : Processes(pids)) + g.Key);
        var needed = obstacles.SelectMany(o => o.Obstacle.Lifts).Distinct().ToList();
        return Error($"{subject} ({DescribeSession(session)}):{Environment.NewLine} - {string.Join(Environment.NewLine + " - ", reasons)}", target, needed, inner,
            session);
    }

    /// <summary>An InsufficientPrivilege error whose recommended action grants <paramref name="needed"/> to this session (or <paramref name="session"/>).</summary>
    public static CheckpointException Error(string message, object target, IReadOnlyCollection<Capability> needed, Exception? inner = null,
        SessionPrivileges? session = null) =>
        new(CheckpointErrorKind.InsufficientPrivilege, message, target, HowToGrant(needed, session ?? SessionPrivileges.Current()), inner);

    /// <summary>
    /// "this session runs as uid 1001 (alice) with CAP_SYS_PTRACE, CAP_CHECKPOINT_RESTORE", "... with no capabilities", or
    /// for most of them "... with every capability but CAP_SYS_RESOURCE".
    /// </summary>
    public static string DescribeSession(SessionPrivileges session)
    {
        ulong known = Enum.GetValues<Capability>().Aggregate(0UL, (set, c) => set | c.Bit());
        ulong lacking = known & ~session.Effective;
        string capabilities = session.Effective == 0 ? "no capabilities"
            : lacking == 0 ? "every capability"
            : ulong.PopCount(session.Effective) > ulong.PopCount(known) / 2 ? $"every capability but {Capabilities.Describe(lacking)}"
            : Capabilities.Describe(session.Effective);
        return $"this session runs as {SessionPrivileges.DescribeUser(session.EffectiveUid)} with {capabilities}";
    }

    // A command that starts PowerShell with what the session has and what it needs: the session's own capabilities
    // would be lost otherwise.
    private static string HowToGrant(IReadOnlyCollection<Capability> needed, SessionPrivileges session)
    {
        const int Spelt = 4;
        if (needed.Count == 0)
        {
            return "Run as root, or as the owner of the process.";
        }
        if (needed.Count > Spelt)
        {
            return $"Run as root: {needed.Count} capabilities are missing.";
        }
        var granted = Enum.GetValues<Capability>().Where(c => c.In(session.Effective) || needed.Contains(c));
        string caps = string.Join(",", granted.Select(c => "+" + c.KernelName()["CAP_".Length..].ToLowerInvariant()));
        return $"Run as root, or start PowerShell with {string.Join(" and ", needed.Select(c => c.KernelName()))} as ambient capabilities: "
            + $"sudo setpriv --reuid=$(id -u) --regid=$(id -g) --init-groups --inh-caps={caps} --ambient-caps={caps} pwsh (see about_CriuPS, UNPRIVILEGED USERS).";
    }
}
