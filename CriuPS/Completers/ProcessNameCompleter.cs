using System.Collections;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Language;

namespace CriuPS.Completers;

/// <summary>Completes -Name with the names of running processes; the tooltip lists their PIDs.</summary>
public sealed class ProcessNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var (word, quote) = CompletionText.Unquote(wordToComplete);
        var pattern = WildcardPattern.Get(WildcardPattern.ContainsWildcardCharacters(word) ? word : word + "*", WildcardOptions.IgnoreCase);
        return RunningProcesses.List()
            .Where(p => pattern.IsMatch(p.Name))
            .GroupBy(p => p.Name, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.OrdinalIgnoreCase)
            .Select(g => new CompletionResult(CompletionText.Quote(g.Key, quote), g.Key, CompletionResultType.ParameterValue,
                $"{g.Key}: {string.Join(", ", g.Select(p => p.Id.ToString(CultureInfo.InvariantCulture)).Take(10))}{(g.Count() > 10 ? ", ..." : "")}"));
    }
}
