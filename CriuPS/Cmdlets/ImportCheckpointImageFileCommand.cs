using System.Management.Automation;
using CriuPS.Completers;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Json;

namespace CriuPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Decodes image files into objects shaped like crit's JSON (crit decode --pretty).</para>
/// </summary>
[Cmdlet(VerbsData.Import, "CheckpointImageFile", DefaultParameterSetName = ByPath)]
[OutputType(ImageFileObjects.TypeName)]
public sealed class ImportCheckpointImageFileCommand : PSCmdlet
{
    private const string ByPath = "Path";
    private const string ByLiteralPath = "LiteralPath";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = ByPath, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(ImageFileCompleter))]
    public string[] Path { get; set; } = Array.Empty<string>();

    [Parameter(Mandatory = true, ParameterSetName = ByLiteralPath, ValueFromPipelineByPropertyName = true)]
    [Alias("PSPath", "LP", "FullName")]
    [ArgumentCompleter(typeof(ImageFileCompleter))]
    public string[] LiteralPath { get; set; } = Array.Empty<string>();

    protected override void ProcessRecord()
    {
        if (ParameterSetName == ByLiteralPath)
        {
            foreach (var literal in LiteralPath)
            {
                Import(GetUnresolvedProviderPathFromPSPath(literal));
            }
            return;
        }
        // A wildcard such as ./img/* also matches dump.log and directories: only image files are of interest then.
        foreach (var path in PathPatterns.Resolve(this, Path, p => !Directory.Exists(p) && ImageTypes.Identify(p) is not null))
        {
            Import(path);
        }
    }

    private void Import(string path)
    {
        PSObject image;
        try
        {
            image = ImageFileObjects.ToPSObject(ImageJson.Read(path));
        }
        catch (Exception e)
        {
            WriteError(ErrorRecords.From(e, path));
            return;
        }
        WriteObject(image);
    }
}
