namespace CriuPS.Engine.Model.Views;

/// <summary>One process of a saved tree, as crit x ps lists it: depth-first from the root, children after their parent.</summary>
public sealed class ImageTreeNode
{
    public required string ImagePath { get; init; }

    public required int Id { get; init; }

    public required int ParentId { get; init; }

    public required int ProcessGroupId { get; init; }

    public required int SessionId { get; init; }

    /// <summary>The process name (comm).</summary>
    public required string Name { get; init; }

    /// <summary>running, stopped or zombie.</summary>
    public required string State { get; init; }

    public required int ThreadCount { get; init; }

    /// <summary>How far below the root: 0 for the root, 1 for its children...</summary>
    public required int Depth { get; init; }

    public override string ToString() => $"{new string(' ', 4 * Depth)}{Name} ({Id})";
}
