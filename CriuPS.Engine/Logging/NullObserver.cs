namespace CriuPS.Engine.Logging;

/// <summary>An observer that ignores everything.</summary>
public sealed class NullObserver : IEngineObserver
{
    public static readonly NullObserver Instance = new();

    public void Phase(string name)
    {
    }

    public void Progress(string activity, long done, long total)
    {
    }

    public void Warning(string message)
    {
    }

    public void Detail(string message)
    {
    }
}
