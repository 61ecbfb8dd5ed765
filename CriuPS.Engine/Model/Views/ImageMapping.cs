namespace CriuPS.Engine.Model.Views;

/// <summary>One memory area (VMA) of a saved process, as crit x mems lists it.</summary>
public sealed class ImageMapping
{
    public required string ImagePath { get; init; }

    public required int ProcessId { get; init; }

    public required ulong Start { get; init; }

    public required ulong End { get; init; }

    public long Size => (long)(End - Start);

    /// <summary>Protection and sharing as /proc/PID/maps shows them: "r-xp".</summary>
    public required string Protection { get; init; }

    /// <summary>anon, heap, stack, file, shared-file, shared-anon, vdso, vvar, vsyscall...</summary>
    public required string Kind { get; init; }

    /// <summary>
    /// What is mapped, as crit shows it: a file's path (with " + 0x..." for an offset and " (s)" when shared),
    /// [stack], [vdso], [vsyscall], shmem[n] or ips[n]; " *" marks areas CRIU does not restore as regular memory.
    /// </summary>
    public required string Mapping { get; init; }

    public override string ToString() => $"{Start:x8}-{End:x8} {Protection} {Mapping}";
}
