using System.Collections;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Language;

namespace CriuPS.Completers;

/// <summary>
/// Completes -Id with the PIDs of running processes, each listed with its name ("1234 nginx") and its command line
/// as tooltip. Digits complete PIDs that start with them; letters complete the PIDs of processes whose name starts
/// with them (or matches them as a wildcard).
/// </summary>
public sealed class ProcessIdCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var (word, _) = CompletionText.Unquote(wordToComplete);
        bool byNumber = word.All(char.IsAsciiDigit);
        var pattern = byNumber ? null : WildcardPattern.Get(WildcardPattern.ContainsWildcardCharacters(word) ? word : word + "*", WildcardOptions.IgnoreCase);
        return RunningProcesses.List()
            .Where(p => byNumber ? p.Id.ToString(CultureInfo.InvariantCulture).StartsWith(word, StringComparison.Ordinal) : pattern!.IsMatch(p.Name))
            .OrderBy(p => p.Id)
            .Select(p => new CompletionResult(p.Id.ToString(CultureInfo.InvariantCulture), $"{p.Id} {p.Name}", CompletionResultType.ParameterValue,
                $"{p.Name} ({p.Id}): {p.CommandLine}"));
    }
}
