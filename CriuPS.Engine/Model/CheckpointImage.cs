namespace CriuPS.Engine.Model;

/// <summary>A checkpoint image directory, as Checkpoint-Process writes it and Get-CheckpointImage reads it.</summary>
public sealed class CheckpointImage
{
    /// <summary>The image directory.</summary>
    public required string Path { get; init; }

    /// <summary>The PID of the root of the saved process tree.</summary>
    public required int RootProcessId { get; init; }

    /// <summary>The root process's name (comm).</summary>
    public required string Name { get; init; }

    /// <summary>Processes saved (for a pre-dump: processes whose memory it holds).</summary>
    public required int ProcessCount { get; init; }

    /// <summary>Threads saved (0 for a pre-dump).</summary>
    public required int ThreadCount { get; init; }

    /// <summary>Bytes of memory contents saved in this image's pages files.</summary>
    public required long MemoryBytes { get; init; }

    /// <summary>Pages (4 KiB) saved in this image.</summary>
    public required long Pages { get; init; }

    /// <summary>Bytes of memory contents this image leaves to its parent images (not written since they were taken).</summary>
    public long ParentMemoryBytes { get; init; }

    /// <summary>The image this one builds on (where its `parent` link leads), for incremental images; null for a full image.</summary>
    public string? ParentPath { get; init; }

    /// <summary>
    /// Whether this is a pre-dump: memory only, copied while the processes ran, for a later checkpoint to build on. It
    /// cannot be restored itself, and has no processes, threads or files to show.
    /// </summary>
    public bool PreDump { get; init; }

    /// <summary>Open files, mapped files and directories recorded in files.img.</summary>
    public required int FileCount { get; init; }

    /// <summary>How long the processes were frozen while being saved (from stats-dump), when known.</summary>
    public TimeSpan? FrozenTime { get; init; }

    /// <summary>How long the whole checkpoint took, when known (CriuPS images only).</summary>
    public TimeSpan? TotalTime { get; init; }

    /// <summary>The kernel the checkpoint was taken on (CriuPS images only).</summary>
    public string? Kernel { get; init; }

    /// <summary>The CPU the checkpoint was taken on, from cpuinfo.img (CriuPS images, and CRIU's made with --cpu-cap).</summary>
    public string? Cpu { get; init; }

    /// <summary>When the checkpoint was taken.</summary>
    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>
    /// Whether the image has the digests of its files (criups-digests.img, which CriuPS writes and CRIU does not), so
    /// that a restore verifies it first. Whether it is intact is Test-CheckpointImage's to say: that reads every file.
    /// </summary>
    public bool HasDigests { get; init; }

    /// <summary>"CriuPS 0.1.0", or "CRIU" for images written by CRIU itself.</summary>
    public required string WrittenBy { get; init; }

    /// <summary>The saved processes (none for a pre-dump).</summary>
    public required IReadOnlyList<ImageProcess> Processes { get; init; }

    public override string ToString() => Path;
}
