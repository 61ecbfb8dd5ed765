namespace CriuPS.Engine.Resources.Cpu;

/// <summary>Whether the CPU features a checkpoint needs are on this machine (Test-CheckpointSupport -ImagePath).</summary>
public sealed class CpuCompatibility
{
    /// <summary>The image directory.</summary>
    public required string ImagePath { get; init; }

    /// <summary>Whether the image can be restored on this CPU: nothing it needs is missing.</summary>
    public bool Fits => MissingFeatures.Count == 0;

    /// <summary>
    /// What the image needs and this machine lacks, by name: instruction-set features as /proc/cpuinfo names them
    /// ("avx512f"), XSAVE state components ("xsave component 9 (PKRU)"), an XSAVE area larger than this CPU's.
    /// </summary>
    public required IReadOnlyList<string> MissingFeatures { get; init; }

    /// <summary>The CPU the checkpoint was taken on, from cpuinfo.img; null when the image has none.</summary>
    public string? SavedCpu { get; init; }

    /// <summary>This machine's CPU.</summary>
    public required string ThisCpu { get; init; }

    /// <summary>What was compared.</summary>
    public required string Detail { get; init; }

    /// <summary>A risk the comparison found that is no reason to refuse, or null.</summary>
    public string? Warning { get; init; }

    public override string ToString() => Fits ? $"{ImagePath}: fits this CPU" : $"{ImagePath}: needs {string.Join(", ", MissingFeatures)}";
}
