namespace CriuPS.Engine.Support;

/// <summary>
/// How one feature is looked for. A probe tries the real thing where it safely can (a system call with harmless
/// arguments, a throwaway process of its own) and leaves nothing behind: every descriptor is closed, every process
/// it starts is killed and reaped by its PID.
/// </summary>
internal abstract class FeatureProbe
{
    public abstract string Name { get; }

    public abstract bool Essential { get; }

    public abstract string Requirement { get; }

    public abstract string Impact { get; }

    /// <summary>Whether the feature is there, and what was seen.</summary>
    public abstract (bool Available, string Detail) Check();
}
