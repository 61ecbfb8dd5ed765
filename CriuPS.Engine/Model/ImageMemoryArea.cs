namespace CriuPS.Engine.Model;

/// <summary>One saved memory area (VMA).</summary>
public sealed class ImageMemoryArea
{
    public required ulong Start { get; init; }

    public required ulong End { get; init; }

    public long Size => (long)(End - Start);

    /// <summary>Protection and sharing as /proc/PID/maps shows them, e.g. "rw-p".</summary>
    public required string Protection { get; init; }

    /// <summary>anon, heap, stack, file, shared-file, shared-anon, memfd, shared-memfd, vdso, vvar, vsyscall...</summary>
    public required string Kind { get; init; }

    /// <summary>The mapped file, for file mappings.</summary>
    public string? Path { get; init; }

    /// <summary>Bytes of this area's contents saved in the image (not counting what it leaves to its parent images).</summary>
    public required long SavedBytes { get; init; }

    public override string ToString() => $"{Start:x}-{End:x} {Protection} {Kind} {Path}";
}
