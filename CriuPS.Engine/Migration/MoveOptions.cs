using CriuPS.Engine.Dump;
using CriuPS.Engine.Model;
using CriuPS.Engine.PageServer;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Migration;

/// <summary>What to move and how many rounds it may take.</summary>
public sealed class MoveOptions
{
    public required int ProcessId { get; init; }

    /// <summary>Pre-dump rounds at most before the final dump.</summary>
    public int MaxRounds { get; init; } = 8;

    /// <summary>A round that predicts a final freeze this short is the last.</summary>
    public TimeSpan MaxDowntime { get; init; } = TimeSpan.FromMilliseconds(500);

    public TimeSpan FreezeTimeout { get; init; } = DumpOptions.DefaultFreezeTimeout;

    public bool TcpEstablished { get; init; }

    /// <summary>Drop the connections TCP listeners have not accepted yet instead of refusing them (<see cref="DumpOptions.SkipInFlight"/>).</summary>
    public bool SkipInFlight { get; init; }

    public CancellationToken Cancellation { get; init; }

    /// <summary>Test hook (CRIUPS_FAIL_AT), passed to every dump of the move.</summary>
    public string? FailAt { get; init; }
}
