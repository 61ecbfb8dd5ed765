namespace CriuPS.Engine.Lazy;

/// <summary>Where a lazy restore stands.</summary>
public enum LazyRestoreState
{
    /// <summary>The process runs; pages still arrive, on fault and in the background.</summary>
    Running,

    /// <summary>Every page arrived: the process no longer depends on anything.</summary>
    Completed,

    /// <summary>The transfer failed (see Error); the process was killed rather than left without its memory.</summary>
    Failed,

    /// <summary>The process ended by itself before every page had arrived.</summary>
    ProcessExited,
}
