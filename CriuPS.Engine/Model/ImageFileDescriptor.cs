namespace CriuPS.Engine.Model;

/// <summary>One saved file descriptor.</summary>
public sealed class ImageFileDescriptor
{
    public required int Fd { get; init; }

    /// <summary>REG, PIPE, TTY... as CRIU names descriptor types.</summary>
    public required string Type { get; init; }

    /// <summary>The path (regular files), or a description such as pipe:[1234].</summary>
    public required string Target { get; init; }

    /// <summary>The open flags (O_*).</summary>
    public required int Flags { get; init; }

    public required bool CloseOnExec { get; init; }

    /// <summary>The file position, for regular files.</summary>
    public long? Position { get; init; }

    public override string ToString() => $"{Fd} {Type} {Target}";
}
