namespace CriuPS.Engine.Model;

/// <summary>One saved process.</summary>
public sealed class ImageProcess
{
    public required int Id { get; init; }

    public required int ParentId { get; init; }

    public required int ProcessGroupId { get; init; }

    public required int SessionId { get; init; }

    public required string Name { get; init; }

    /// <summary>running, stopped (by a signal such as SIGSTOP) or zombie (exited, not yet reaped by its parent).</summary>
    public required string State { get; init; }

    public required IReadOnlyList<ImageThread> Threads { get; init; }

    public required IReadOnlyList<ImageMemoryArea> MemoryAreas { get; init; }

    public required IReadOnlyList<ImageFileDescriptor> Files { get; init; }

    /// <summary>Bytes of this process's memory saved in the image (not counting what it leaves to its parent images).</summary>
    public required long MemoryBytes { get; init; }

    public override string ToString() => $"{Name} ({Id})";
}
