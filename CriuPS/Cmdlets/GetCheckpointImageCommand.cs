using System.Management.Automation;
using CriuPS.Completers;
using CriuPS.Engine.Model;
using CriuPS.Engine.Model.Views;

namespace CriuPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Reads checkpoint image directories (written by CriuPS or CRIU) into objects.</para>
/// </summary>
[Cmdlet(VerbsCommon.Get, "CheckpointImage", DefaultParameterSetName = ByPath)]
[OutputType(typeof(CheckpointImage), typeof(ImageTreeNode), typeof(ImageOpenFile), typeof(ImageMapping), typeof(ImageResidentPages))]
public sealed class GetCheckpointImageCommand : PSCmdlet
{
    private const string ByPath = "Path";
    private const string ByLiteralPath = "LiteralPath";

    [Parameter(Position = 0, ParameterSetName = ByPath, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(ImageDirectoryCompleter))]
    public string[]? Path { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = ByLiteralPath, ValueFromPipelineByPropertyName = true)]
    [Alias("PSPath", "LP", "FullName")]
    [ArgumentCompleter(typeof(ImageDirectoryCompleter))]
    public string[] LiteralPath { get; set; } = Array.Empty<string>();

    /// <summary>What to show: the image (default), or one of crit's explorer views.</summary>
    [Parameter]
    public CheckpointImageView View { get; set; } = CheckpointImageView.Image;

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
        // A wildcard may match ordinary directories and files: only images are of interest then.
        foreach (var path in PathPatterns.Resolve(this, Path, IsImage))
        {
            Read(path);
        }
    }

    private void Read(string path)
    {
        IEnumerable<object> objects;
        try
        {
            objects = CheckpointImageViews.Read(path, View);
        }
        catch (Exception e)
        {
            WriteError(ErrorRecords.From(e, path));
            return;
        }
        // Outside the try: a downstream Select-Object -First stops the pipeline with an exception that must pass.
        WriteObject(objects, enumerateCollection: true);
    }

    private static bool IsImage(string path) => File.Exists(System.IO.Path.Combine(path, "inventory.img"));
}
