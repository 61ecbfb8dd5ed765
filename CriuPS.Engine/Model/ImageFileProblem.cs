namespace CriuPS.Engine.Model;

/// <summary>One file of an image that is not as the checkpoint wrote it.</summary>
/// <param name="Path">The file.</param>
/// <param name="Problem">What is wrong with it ("truncated: 4096 bytes, but 8192 were written").</param>
public sealed record ImageFileProblem(string Path, string Problem)
{
    /// <summary>The file's name.</summary>
    public string File => System.IO.Path.GetFileName(Path);

    public override string ToString() => $"{Path}: {Problem}";
}
