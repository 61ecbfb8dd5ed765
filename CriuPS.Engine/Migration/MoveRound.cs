using CriuPS.Native.Memory;

namespace CriuPS.Engine.Migration;

/// <summary>One pre-dump round of a move (or its final dump): what it sent and how long it took.</summary>
public sealed class MoveRound
{
    /// <summary>1 for the first pre-dump; the final dump comes after the last.</summary>
    public required int Number { get; init; }

    /// <summary>Pages sent: written since the round before (all of them in the first).</summary>
    public required long Pages { get; init; }

    /// <summary>Bytes of image files sent.</summary>
    public required ByteCount BytesSent { get; init; }

    /// <summary>The round from start to commit.</summary>
    public required TimeSpan Duration { get; init; }

    /// <summary>How long the processes were frozen (to find the pages and arm write tracking).</summary>
    public required TimeSpan FrozenTime { get; init; }

    /// <summary>Bytes sent per second of the round.</summary>
    public double BytesPerSecond => Duration > TimeSpan.Zero ? BytesSent.Value / Duration.TotalSeconds : 0;

    /// <summary>
    /// The freeze a final dump taken now would cost, as this round predicts it: the final dump sends about what
    /// was written during this round (as much as this round sent, once the rounds have stopped shrinking) at the
    /// best rate the move has seen, with the processes frozen meanwhile, plus a freeze's fixed part (this round's).
    /// A round's own duration is no predictor: past the first rounds it is mostly fixed costs (a connection, a
    /// server started there, the scan of the address space) that the final dump does not multiply.
    /// </summary>
    public TimeSpan PredictedDowntime { get; internal set; }
}
