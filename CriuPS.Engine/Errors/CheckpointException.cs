namespace CriuPS.Engine.Errors;

/// <summary>A failure the engine understands: it says what happened, to what, and what the user can do.</summary>
public sealed class CheckpointException : Exception
{
    public CheckpointException(CheckpointErrorKind kind, string message, object? target = null, string? recommendedAction = null, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
        Target = target;
        RecommendedAction = recommendedAction;
    }

    public CheckpointErrorKind Kind { get; }

    /// <summary>The process id, path or image file the error is about.</summary>
    public object? Target { get; }

    public string? RecommendedAction { get; }

    /// <summary>The run's log file, when one was written (for a failed dump it is kept outside the image path).</summary>
    public string? LogPath { get; set; }
}
