namespace CriuPS.Engine.Logging;

/// <summary>
/// How the engine tells its caller what it is doing. The engine calls these on its own (tracing) thread; the
/// PowerShell layer queues them for its pipeline thread.
/// </summary>
public interface IEngineObserver
{
    /// <summary>A new phase begins (for -Verbose and progress).</summary>
    void Phase(string name);

    /// <summary>Progress within the current phase, e.g. pages written of pages to write.</summary>
    void Progress(string activity, long done, long total);

    /// <summary>Something the user should know that does not stop the work.</summary>
    void Warning(string message);

    /// <summary>A detail for -Verbose.</summary>
    void Detail(string message);
}
