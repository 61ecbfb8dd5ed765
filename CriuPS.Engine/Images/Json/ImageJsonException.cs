namespace CriuPS.Engine.Images.Json;

/// <summary>A JSON document (or object tree) that does not describe a valid image; says where, as a JSON path.</summary>
public sealed class ImageJsonException : Exception
{
    internal ImageJsonException(string jsonPath, string problem)
        : base(jsonPath.Length == 0 ? problem : $"{jsonPath}: {problem}")
    {
        JsonPath = jsonPath;
    }

    /// <summary>Where in the document the problem is: "entries[3].vmas[0].prot", or "" for the document itself.</summary>
    public string JsonPath { get; }
}
