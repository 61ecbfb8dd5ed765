using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using CriuPS.Engine.Support;

namespace CriuPS.Completers;

/// <summary>Completes -Name of Test-CheckpointSupport with the names of the features it checks.</summary>
public sealed class FeatureNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var (word, quote) = CompletionText.Unquote(wordToComplete);
        var pattern = WildcardPattern.Get(WildcardPattern.ContainsWildcardCharacters(word) ? word : word + "*", WildcardOptions.IgnoreCase);
        return SupportCheck.FeatureNames.Where(pattern.IsMatch)
            .Select(name => new CompletionResult(CompletionText.Quote(name, quote), name, CompletionResultType.ParameterValue, name));
    }
}
