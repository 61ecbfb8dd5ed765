using CriuPS.Native.Proc;

namespace CriuPS.Engine.Support;

/// <summary>Checks what CriuPS needs from this machine, as "criu check" does. Must run on one thread (some probes trace a process).</summary>
public static class SupportCheck
{
    private static readonly FeatureProbe[] Probes =
    [
        new PtraceSeizeProbe(),
        new Clone3SetTidProbe(),
        new MmMapProbe(),
        new PidfdGetfdProbe(),
        new RseqConfigurationProbe(),
        new PagemapScanProbe(),
        new WriteTrackingProbe(),
        new TimerIdRestoreProbe(),
        new TcpRepairProbe(),
        new NftablesProbe(),
        new CgroupProbe(),
        new ShadowStackProbe(),
        new CudaCheckpointProbe(),
        // Privileges: what this session may do, and what fails without each.
        new RootProbe(),
        new CapabilityProbe(Capability.CheckpointRestore,
            "Nothing can be checkpointed or restored, unless CAP_SYS_ADMIN is effective: dumps read the files a process maps through /proc/PID/map_files, "
            + "restores give the saved PIDs with clone3 set_tid and the executable with PR_SET_MM_MAP.",
            "; Linux 5.9+, CAP_SYS_ADMIN stands in for it"),
        new CapabilityProbe(Capability.SysPtrace,
            "Only processes of this session's user that are dumpable (no set-user-ID program) and hold no capability this session lacks can be "
            + "checkpointed, and with Yama's ptrace_scope 1 only those this session started."),
        new CapabilityProbe(Capability.SysAdmin,
            "Processes with seccomp filters can be neither checkpointed nor restored: their filters are read, and suspended while CriuPS works in them, "
            + "through ptrace calls that need it."),
        new CapabilityProbe(Capability.DacOverride,
            "Processes of other users, and processes that are not dumpable, cannot be checkpointed: their /proc/PID/fd, map_files and mem belong to "
            + "their owner, or to root."),
        new CapabilityProbe(Capability.DacReadSearch,
            "Inotify watches and fanotify marks can be neither checkpointed nor restored: the watched files are found again by their handles (open_by_handle_at)."),
        new CapabilityProbe(Capability.Setuid, "Images of processes that ran as another user cannot be restored."),
        new CapabilityProbe(Capability.Setgid, "Images of processes that ran with other groups or supplementary groups cannot be restored."),
        new CapabilityProbe(Capability.Setpcap, "Images of processes with another capability bounding set or other securebits cannot be restored."),
        new CapabilityProbe(Capability.SysChroot, "Images of chrooted processes cannot be restored."),
        new CapabilityProbe(Capability.SysNice, "Images of threads with a real-time scheduling policy, or a nice value below this session's, cannot be restored."),
        new CapabilityProbe(Capability.SysResource,
            "Restored processes keep this session's hard resource limits where theirs were higher (with a warning), and an OOM score adjustment below "
            + "this session's cannot be restored."),
        new CapabilityProbe(Capability.AuditControl, "Images of processes with another login uid (from another login session) cannot be restored."),
        new CapabilityProbe(Capability.NetAdmin, "Established TCP connections can be neither checkpointed nor restored: TCP repair mode and the nftables lock need it."),
        new CapabilityProbe(Capability.NetRaw, "Images of processes with packet sockets cannot be restored: creating an AF_PACKET socket needs it."),
        new YamaPtraceScopeProbe(),
    ];

    /// <summary>The names of every feature checked, in the order <see cref="Run"/> reports them.</summary>
    public static IReadOnlyList<string> FeatureNames { get; } = Probes.Select(p => p.Name).ToList();

    /// <summary>Checks the features whose names <paramref name="include"/> accepts (all by default).</summary>
    public static IReadOnlyList<SupportFeature> Run(Func<string, bool>? include = null) =>
        Probes.Where(p => include?.Invoke(p.Name) ?? true).Select(Check).ToList();

    /// <summary>Whether every essential feature among <paramref name="features"/> is available.</summary>
    public static bool EssentialsAvailable(IEnumerable<SupportFeature> features) => features.Where(f => f.Essential).All(f => f.Available);

    // A probe that fails in an unforeseen way reports the feature missing, with the reason: the check itself never fails.
    private static SupportFeature Check(FeatureProbe probe)
    {
        (bool available, string detail) = (false, "");
        try
        {
            (available, detail) = probe.Check();
        }
        catch (Exception e)
        {
            detail = $"The probe failed: {e.Message}";
        }
        return new SupportFeature
        {
            Name = probe.Name,
            Available = available,
            Essential = probe.Essential,
            Requirement = probe.Requirement,
            Impact = probe.Impact,
            Detail = detail,
        };
    }
}
