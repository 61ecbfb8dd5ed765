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
