namespace CriuPS.Engine.Images;

/// <summary>An image file that does not hold what its type says it should.</summary>
public sealed class ImageFormatException : Exception
{
    internal ImageFormatException(string path, long offset, string problem, Exception? inner = null)
        : base($"{path}: {problem} (at offset {offset})", inner)
    {
        Path = path;
        Offset = offset;
    }

    /// <summary>The file that was being read.</summary>
    public string Path { get; }

    /// <summary>Where in the file the offending header, length prefix, entry or payload starts.</summary>
    public long Offset { get; }
}
