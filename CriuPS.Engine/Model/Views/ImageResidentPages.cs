namespace CriuPS.Engine.Model.Views;

/// <summary>How much of one memory area of a saved process is in the image (crit x rss), from pagemap-PID.img.</summary>
public sealed class ImageResidentPages
{
    public required string ImagePath { get; init; }

    public required int ProcessId { get; init; }

    public required ulong Start { get; init; }

    public required ulong End { get; init; }

    /// <summary>The area's size in 4 KiB pages.</summary>
    public required long Pages { get; init; }

    /// <summary>Pages of the area the pagemap lists: saved in this image or in a parent image.</summary>
    public required long ResidentPages { get; init; }

    /// <summary>Of those, pages kept in a parent image (incremental checkpoints) rather than in this one.</summary>
    public required long ParentPages { get; init; }

    /// <summary>How many pagemap entries (runs of pages) cover part of the area.</summary>
    public required int Runs { get; init; }

    /// <summary>What is mapped, as in <see cref="ImageMapping.Mapping"/>.</summary>
    public required string Mapping { get; init; }

    public override string ToString() => $"{Start:x8} {ResidentPages}/{Pages} {Mapping}";
}
