using System.Management.Automation;
using CriuPS.Completers;
using CriuPS.Engine.Resources.Cpu;
using CriuPS.Engine.Support;

namespace CriuPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Checks whether this machine has the kernel features, privileges and hardware CriuPS uses (like criu check), or whether a checkpoint's CPU needs fit this machine (like criu cpuinfo check).</para>
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "CheckpointSupport", DefaultParameterSetName = ByFeature)]
[OutputType(typeof(SupportFeature), typeof(CpuCompatibility), typeof(bool))]
public sealed class TestCheckpointSupportCommand : PSCmdlet
{
    private const string ByFeature = "Feature";
    private const string ByImage = "Image";

    [Parameter(Position = 0, ParameterSetName = ByFeature)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(FeatureNameCompleter))]
    public string[]? Name { get; set; }

    /// <summary>Image directories whose CPU needs to compare with this machine's CPU.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ByImage, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Path", "FullName", "PSPath")]
    [ArgumentCompleter(typeof(ImageDirectoryCompleter))]
    public string[] ImagePath { get; set; } = Array.Empty<string>();

    [Parameter]
    public SwitchParameter Quiet { get; set; }

    protected override void ProcessRecord()
    {
        if (ParameterSetName != ByImage)
        {
            return;
        }
        foreach (var path in ImagePath.Select(GetUnresolvedProviderPathFromPSPath))
        {
            CpuCompatibility fit;
            try
            {
                fit = CpuFit.Check(path);
            }
            catch (Exception e)
            {
                WriteError(ErrorRecords.From(e, path));
                continue;
            }
            WriteVerbose($"{path}: {fit.Detail}");
            if (fit.Warning is not null)
            {
                WriteWarning($"{path}: {fit.Warning}");
            }
            WriteObject(Quiet ? fit.Fits : fit);
        }
    }

    protected override void EndProcessing()
    {
        if (ParameterSetName == ByImage)
        {
            return;
        }
        var patterns = (Name ?? Array.Empty<string>()).Select(n => WildcardPattern.Get(n, WildcardOptions.IgnoreCase)).ToList();
        foreach (var unknown in (Name ?? Array.Empty<string>()).Where(n => !WildcardPattern.ContainsWildcardCharacters(n)
            && !SupportCheck.FeatureNames.Contains(n, StringComparer.OrdinalIgnoreCase)))
        {
            WriteError(new ErrorRecord(new ItemNotFoundException($"CriuPS checks no feature named '{unknown}'."), "FeatureNotFound", ErrorCategory.ObjectNotFound, unknown)
            {
                ErrorDetails = new ErrorDetails($"CriuPS checks no feature named '{unknown}'.")
                {
                    RecommendedAction = $"Use one of: {string.Join(", ", SupportCheck.FeatureNames)}.",
                },
            });
        }
        var features = SupportCheck.Run(name => patterns.Count == 0 || patterns.Any(p => p.IsMatch(name)));
        foreach (var feature in features)
        {
            WriteVerbose($"{feature.Name}: {(feature.Available ? "available" : "missing")}, {feature.Detail}");
        }
        if (Quiet)
        {
            // Without -Name: whether plain checkpoints and restores work here. With -Name: whether the named features are there.
            WriteObject(Name is null ? SupportCheck.EssentialsAvailable(features) : features.Count > 0 && features.All(f => f.Available));
            return;
        }
        WriteObject(features, enumerateCollection: true);
    }
}
