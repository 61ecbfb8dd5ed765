using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using CriuPS.Engine.Images;

namespace CriuPS.Completers;

/// <summary>Completes paths with image files (inventory.img, core-1234.img, pages-1.img...) and the directories that may hold them.</summary>
public sealed class ImageFileCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var candidates = PathCompletion.Candidates(wordToComplete).ToList();
        return candidates.Where(c => !c.IsDirectory && ImageTypes.Identify(c.Name) is not null)
            .Select(c => new CompletionResult(c.CompletionText, c.Name, CompletionResultType.ProviderItem, $"{ImageTypes.Identify(c.Name)!.MagicName} image: {c.FullPath}"))
            .Concat(candidates.Where(c => c.IsDirectory)
                .Select(c => new CompletionResult(c.CompletionText, c.Name + "/", CompletionResultType.ProviderContainer, c.FullPath)));
    }
}
