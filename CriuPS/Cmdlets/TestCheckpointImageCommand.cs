using System.Management.Automation;
using CriuPS.Completers;
using CriuPS.Engine.Model;

namespace CriuPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Checks that a checkpoint image is as its checkpoint wrote it, against the digests it recorded.</para>
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "CheckpointImage", DefaultParameterSetName = ByPath)]
[OutputType(typeof(ImageIntegrity), typeof(bool))]
public sealed class TestCheckpointImageCommand : PSCmdlet
{
    private const string ByPath = "Path";
    private const string ByLiteralPath = "LiteralPath";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = ByPath, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(ImageDirectoryCompleter))]
    public string[] Path { get; set; } = Array.Empty<string>();

    [Parameter(Mandatory = true, ParameterSetName = ByLiteralPath, ValueFromPipelineByPropertyName = true)]
    [Alias("PSPath", "LP", "FullName")]
    [ArgumentCompleter(typeof(ImageDirectoryCompleter))]
    public string[] LiteralPath { get; set; } = Array.Empty<string>();

    /// <summary>Answer $true (intact) or $false per image instead of the result objects.</summary>
    [Parameter]
    public SwitchParameter Quiet { get; set; }

    protected override void ProcessRecord()
    {
        var paths = ParameterSetName == ByLiteralPath
            ? LiteralPath.Select(GetUnresolvedProviderPathFromPSPath)
            // A wildcard may match ordinary directories and files: only images are checked then.
            : PathPatterns.Resolve(this, Path, p => File.Exists(System.IO.Path.Combine(p, "inventory.img")));
        foreach (var path in paths)
        {
            Check(path);
        }
    }

    private void Check(string path)
    {
        ImageIntegrity result;
        try
        {
            result = ImageIntegrity.Check(path);
        }
        catch (Exception e)
        {
            WriteError(ErrorRecords.From(e, path));
            return;
        }
        foreach (var problem in result.Problems)
        {
            WriteVerbose(problem.ToString());
        }
        foreach (var directory in result.Unverified)
        {
            WriteVerbose($"{directory} has no digests to check against (criups-digests.img).");
        }
        WriteObject(Quiet ? result.Intact : result);
    }
}
