namespace CriuPS.Engine.Model;

/// <summary>
/// What Checkpoint-Process -PageServer reports: the image is on the page server's machine, so this says where
/// it went and sums up what was sent (Get-CheckpointImage there reads the image itself).
/// </summary>
public sealed class RemoteCheckpointImage
{
    /// <summary>The page server's address ("10.0.0.2:7000").</summary>
    public required string PageServer { get; init; }

    /// <summary>Whether the image went over TLS.</summary>
    public required bool Tls { get; init; }

    /// <summary>The image directory on the server's machine.</summary>
    public required string Path { get; init; }

    /// <summary>The saved tree's root process, which ended (or runs on, with -LeaveRunning).</summary>
    public required int RootProcessId { get; init; }

    /// <summary>Its name (comm).</summary>
    public required string Name { get; init; }

    /// <summary>Processes sent, zombies included.</summary>
    public required int ProcessCount { get; init; }

    /// <summary>Threads sent, over all processes.</summary>
    public required int ThreadCount { get; init; }

    /// <summary>Memory contents sent in pages images.</summary>
    public required long MemoryBytes { get; init; }

    /// <summary>The same in 4 KiB pages, as the server counts them (PagesReceived).</summary>
    public required long Pages { get; init; }

    /// <summary>Every byte of image files sent, pages and all.</summary>
    public required long BytesSent { get; init; }

    /// <summary>How long the processes stayed frozen: the memory went over the network meanwhile.</summary>
    public required TimeSpan FrozenTime { get; init; }

    /// <summary>The whole checkpoint, connection included.</summary>
    public required TimeSpan TotalTime { get; init; }

    /// <summary>When the server committed the image.</summary>
    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>dump.log, which stays on this machine.</summary>
    public required string LogPath { get; init; }

    public override string ToString() => $"{PageServer}:{Path}";
}
