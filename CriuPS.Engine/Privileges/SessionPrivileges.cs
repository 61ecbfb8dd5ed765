using System.Globalization;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Privileges;

/// <summary>
/// Who the engine runs as and what it may do: its ids, its capabilities and the Yama ptrace policy. Capabilities
/// belong to threads: they are read from the calling thread, which for the engine is the thread that traces.
/// </summary>
public sealed class SessionPrivileges
{
    private const string YamaScopePath = "/proc/sys/kernel/yama/ptrace_scope";

    private const uint SecbitKeepCaps = 1 << 4;

    /// <param name="status">The status of the thread whose privileges these are.</param>
    internal SessionPrivileges(ProcStatus status, int? yamaScope, uint securebits)
    {
        Securebits = securebits;
        Uids = status.Uids;
        Gids = status.Gids;
        Groups = status.Groups;
        Effective = status.CapEffective;
        Permitted = status.CapPermitted;
        Bounding = status.CapBounding;
        Ambient = status.CapAmbient;
        YamaPtraceScope = yamaScope;
    }

    /// <summary>Real, effective, saved and filesystem uids.</summary>
    public uint[] Uids { get; }

    /// <summary>The real uid: the kernel compares it with a target's uids before it lets us trace it.</summary>
    public uint Uid => Uids[0];

    public uint EffectiveUid => Uids[1];

    /// <summary>Real, effective, saved and filesystem gids.</summary>
    public uint[] Gids { get; }

    public uint Gid => Gids[0];

    public uint[] Groups { get; }

    public ulong Effective { get; }

    public ulong Permitted { get; }

    public ulong Bounding { get; }

    public ulong Ambient { get; }

    /// <summary>SECBIT_* flags of this thread.</summary>
    public uint Securebits { get; }

    /// <summary>
    /// The capabilities a program the engine starts has (the restore host, and so every restored process before its
    /// credentials are set): root's program gets the bounding set; another user's, what the engine passes on as
    /// ambient capabilities (<see cref="InheritedCapabilities"/>).
    /// </summary>
    public ulong PassedOn => IsRoot ? Bounding : Effective & Permitted & Bounding;

    /// <summary>The securebits such a program starts with (an exec clears SECBIT_KEEP_CAPS).</summary>
    public uint SecurebitsPassedOn => Securebits & ~SecbitKeepCaps;

    /// <summary>kernel.yama.ptrace_scope (0 classic, 1 descendants only, 2 CAP_SYS_PTRACE only, 3 none), or null without Yama.</summary>
    public int? YamaPtraceScope { get; }

    public bool IsRoot => EffectiveUid == 0;

    public static SessionPrivileges Current()
    {
        string? scope = File.Exists(YamaScopePath) ? File.ReadAllText(YamaScopePath).Trim() : null;
        return new SessionPrivileges(ProcStatus.Parse(ProcFiles.ReadText("/proc/thread-self/status")),
            scope is null ? null : int.Parse(scope, CultureInfo.InvariantCulture), Prctl.Securebits());
    }

    public bool Has(Capability capability) => capability.In(Effective);

    /// <summary>"CAP_SYS_ADMIN effective" or "CAP_SYS_ADMIN not effective".</summary>
    public string Describe(Capability capability) => $"{capability.KernelName()} {(Has(capability) ? "effective" : "not effective")}";

    /// <summary>Whether checkpoint and restore, which the kernel lets CAP_SYS_ADMIN do too, are allowed (CAP_CHECKPOINT_RESTORE, Linux 5.9+).</summary>
    public bool CanCheckpointRestore => Has(Capability.CheckpointRestore) || Has(Capability.SysAdmin);

    /// <summary>"uid 1001 (alice)", or "uid 0 (root)".</summary>
    public static string DescribeUser(uint uid) => UserNames.Of(uid) is { } name ? $"uid {uid} ({name})" : $"uid {uid}";
}
