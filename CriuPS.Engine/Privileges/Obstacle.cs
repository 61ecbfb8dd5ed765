using CriuPS.Native.Proc;

namespace CriuPS.Engine.Privileges;

/// <summary>One thing the kernel would refuse this session, and the capabilities that would lift it (none when nothing can).</summary>
internal sealed record Obstacle(string Reason, IReadOnlyList<Capability> Lifts)
{
    public Obstacle(string reason, Capability lifts)
        : this(reason, [lifts])
    {
    }
}
