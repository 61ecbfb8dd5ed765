namespace CriuPS.Engine.Model.Views;

/// <summary>One file a saved process holds, as crit x fds lists it: its descriptors, then cwd and root (and exe).</summary>
public sealed class ImageOpenFile
{
    public required string ImagePath { get; init; }

    public required int ProcessId { get; init; }

    /// <summary>The descriptor number ("0", "1"...), or "cwd", "root" or "exe".</summary>
    public required string Fd { get; init; }

    /// <summary>The kind of file as CRIU names it: REG, PIPE, UNIXSK, TTY...</summary>
    public required string Type { get; init; }

    /// <summary>What crit shows: the path of a regular file, pipe[inode], unix[inode (peer) name], or TYPE.id for others.</summary>
    public required string Target { get; init; }

    /// <summary>The file's id in files.img.</summary>
    public required uint FileId { get; init; }

    public override string ToString() => $"{Fd}: {Target}";
}
