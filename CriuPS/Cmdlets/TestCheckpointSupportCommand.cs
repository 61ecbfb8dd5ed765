using System.Management.Automation;
using CriuPS.Completers;
using CriuPS.Engine.Support;

namespace CriuPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Checks whether this machine has the kernel features, privileges and hardware CriuPS uses (like criu check).</para>
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "CheckpointSupport")]
[OutputType(typeof(SupportFeature), typeof(bool))]
public sealed class TestCheckpointSupportCommand : PSCmdlet
{
    [Parameter(Position = 0)]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(FeatureNameCompleter))]
    public string[]? Name { get; set; }

    [Parameter]
    public SwitchParameter Quiet { get; set; }

    protected override void EndProcessing()
    {
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
