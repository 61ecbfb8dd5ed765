using CriuPS.Engine.Migration;

namespace CriuPS.Engine.Model;

/// <summary>What Move-Process reports: the process as it runs now on the destination, and what the move cost.</summary>
public sealed class MovedProcess
{
    /// <summary>The destination (the session's computer).</summary>
    public required string ComputerName { get; init; }

    /// <summary>The process's PID there (as seen from the destination's PID namespace).</summary>
    public required int ProcessId { get; init; }

    /// <summary>Its PID on the source, where it has ended.</summary>
    public required int SourceProcessId { get; init; }

    public required string Name { get; init; }

    /// <summary>From the start of the final dump to the process running on the destination.</summary>
    public required TimeSpan Downtime { get; init; }

    /// <summary>How long the final dump kept the process frozen (part of the downtime).</summary>
    public required TimeSpan FrozenTime { get; init; }

    /// <summary>Image bytes sent over every round and the final dump.</summary>
    public required long BytesSent { get; init; }

    /// <summary>Pre-dump rounds taken before the final dump.</summary>
    public required int PreDumpRounds { get; init; }

    /// <summary>Each pre-dump round, in order.</summary>
    public required IReadOnlyList<MoveRound> Rounds { get; init; }

    /// <summary>The image on the destination (its logs are kept there: restore.log).</summary>
    public required string ImagePath { get; init; }

    /// <summary>The final dump's log on the source.</summary>
    public required string LogPath { get; init; }

    /// <summary>Whether the images went over TLS.</summary>
    public required bool Tls { get; init; }

    /// <summary>Whether it moved post-copy: running there at once, its memory pulled from the source's held processes.</summary>
    public bool PostCopy { get; init; }

    /// <summary>Post-copy: pages the copy pulled from the source's memory after the freeze.</summary>
    public long PagesPulled { get; init; }

    /// <summary>Post-copy: when the copy said it had every page (the source's clock).</summary>
    public DateTime? AllPagesArrived { get; init; }

    /// <summary>When the process ended on the source (the source's clock): post-copy, never before <see cref="AllPagesArrived"/>.</summary>
    public DateTime SourceEnded { get; init; }

    public override string ToString() => $"{ComputerName}:{ProcessId}";
}
