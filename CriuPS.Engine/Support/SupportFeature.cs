namespace CriuPS.Engine.Support;

/// <summary>One kernel, hardware or library feature CriuPS relies on, and whether this machine has it.</summary>
public sealed class SupportFeature
{
    public required string Name { get; init; }

    public required bool Available { get; init; }

    /// <summary>Whether plain checkpoints and restores need it (Test-CheckpointSupport -Quiet counts only these).</summary>
    public required bool Essential { get; init; }

    /// <summary>The kernel version, privilege or hardware the feature needs.</summary>
    public required string Requirement { get; init; }

    /// <summary>What does not work without it.</summary>
    public required string Impact { get; init; }

    /// <summary>What the probe observed on this machine.</summary>
    public required string Detail { get; init; }

    public override string ToString() => $"{Name}: {(Available ? "available" : "missing")}";
}
