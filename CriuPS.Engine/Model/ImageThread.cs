namespace CriuPS.Engine.Model;

/// <summary>One saved thread.</summary>
public sealed class ImageThread
{
    public required int Id { get; init; }

    public required string Name { get; init; }

    /// <summary>The instruction pointer the thread resumes at.</summary>
    public required ulong InstructionPointer { get; init; }

    public override string ToString() => $"{Name} ({Id})";
}
