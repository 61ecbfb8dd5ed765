using System.Collections;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Language;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;

namespace CriuPS.Completers;

/// <summary>
/// Completes image paths with directories: checkpoint images (directories holding inventory.img) first, described
/// in the tooltip by the process they hold, then the other directories, to go deeper.
/// </summary>
public sealed class ImageDirectoryCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var directories = PathCompletion.Candidates(wordToComplete).Where(c => c.IsDirectory).ToList();
        var images = directories.Where(c => File.Exists(Path.Combine(c.FullPath, ImageTypes.Inventory.FileName(null)))).ToList();
        return images.Select(c => new CompletionResult(c.CompletionText, c.Name, CompletionResultType.ProviderContainer, Describe(c.FullPath)))
            .Concat(directories.Except(images).Select(c => new CompletionResult(c.CompletionText, c.Name + "/", CompletionResultType.ProviderContainer, c.FullPath)));
    }

    // A glance at pstree.img and the root's core image, cheap enough for a keystroke; never an error.
    private static string Describe(string directory)
    {
        string when = File.GetLastWriteTime(Path.Combine(directory, ImageTypes.Inventory.FileName(null))).ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
        try
        {
            var root = (PstreeEntry)ImageReader.ReadAll(Path.Combine(directory, ImageTypes.Pstree.FileName(null)))[0].Message;
            var core = ImageReader.ReadSingle<CoreEntry>(directory, ImageTypes.Core, root.Pid.ToString(CultureInfo.InvariantCulture));
            return $"Checkpoint image of {core.Tc?.Comm} ({root.Pid}), {when}: {directory}";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ImageFormatException or ArgumentException or IndexOutOfRangeException)
        {
            return $"Checkpoint image, {when}: {directory}";
        }
    }
}
