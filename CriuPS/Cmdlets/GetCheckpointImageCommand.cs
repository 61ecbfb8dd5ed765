using System.Collections.ObjectModel;
using System.Management.Automation;
using CriuPS.Engine.Model;

namespace CriuPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Reads checkpoint image directories (written by CriuPS or CRIU) into objects.</para>
/// </summary>
[Cmdlet(VerbsCommon.Get, "CheckpointImage", DefaultParameterSetName = ByPath)]
[OutputType(typeof(CheckpointImage))]
public sealed class GetCheckpointImageCommand : PSCmdlet
{
    private const string ByPath = "Path";
    private const string ByLiteralPath = "LiteralPath";

    [Parameter(Position = 0, ParameterSetName = ByPath, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    public string[]? Path { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = ByLiteralPath, ValueFromPipelineByPropertyName = true)]
    [Alias("PSPath", "LP", "FullName")]
    public string[] LiteralPath { get; set; } = Array.Empty<string>();

    protected override void ProcessRecord()
    {
        if (ParameterSetName == ByLiteralPath)
        {
            foreach (var literal in LiteralPath)
            {
                Read(GetUnresolvedProviderPathFromPSPath(literal));
            }
            return;
        }
        if (Path is null)
        {
            // No path: the image directories under the current location.
            var here = SessionState.Path.CurrentFileSystemLocation.ProviderPath;
            foreach (var dir in Directory.EnumerateDirectories(here).Where(IsImage).Order())
            {
                Read(dir);
            }
            return;
        }
        foreach (var pattern in Path)
        {
            Collection<string> resolved;
            try
            {
                resolved = GetResolvedProviderPathFromPSPath(pattern, out _);
            }
            catch (ItemNotFoundException e)
            {
                WriteError(new ErrorRecord(e, "ImageNotFound", ErrorCategory.ObjectNotFound, pattern));
                continue;
            }
            bool wildcard = WildcardPattern.ContainsWildcardCharacters(pattern);
            foreach (var path in resolved)
            {
                // A wildcard may match ordinary directories and files: only images are of interest then.
                if (wildcard && !IsImage(path))
                {
                    continue;
                }
                Read(path);
            }
        }
    }

    private void Read(string path)
    {
        try
        {
            WriteObject(CheckpointImageReader.Read(path));
        }
        catch (Exception e)
        {
            WriteError(ErrorRecords.From(e, path));
        }
    }

    private static bool IsImage(string path) => File.Exists(System.IO.Path.Combine(path, "inventory.img"));
}
