using System.Management.Automation;

namespace CriuPS.Completers;

/// <summary>
/// Lists the entries of the directory a partly typed path points into, with the text to put back on the command
/// line: the directory part as typed, the entry's name, quoted as needed.
/// </summary>
internal static class PathCompletion
{
    public sealed record Candidate(string FullPath, string Name, bool IsDirectory, string CompletionText);

    public static IEnumerable<Candidate> Candidates(string wordToComplete)
    {
        var (word, quote) = CompletionText.Unquote(wordToComplete);
        int slash = word.LastIndexOf('/');
        string typedDirectory = slash >= 0 ? word[..(slash + 1)] : "";
        string prefix = slash >= 0 ? word[(slash + 1)..] : word;
        string directory = Resolve(typedDirectory);
        if (!Directory.Exists(directory))
        {
            yield break;
        }
        var pattern = WildcardPattern.Get(WildcardPattern.ContainsWildcardCharacters(prefix) ? prefix : prefix + "*", WildcardOptions.None);
        IEnumerable<FileSystemInfo> entries;
        try
        {
            entries = new DirectoryInfo(directory).EnumerateFileSystemInfos().Where(e => pattern.IsMatch(e.Name)).OrderBy(e => e.Name, StringComparer.Ordinal).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            yield break;
        }
        foreach (var entry in entries)
        {
            yield return new Candidate(entry.FullName, entry.Name, entry is DirectoryInfo, CompletionText.Quote(typedDirectory + entry.Name, quote));
        }
    }

    // Relative paths are relative to PowerShell's current location, which is not the process's current directory.
    private static string Resolve(string typedDirectory)
    {
        string home = Environment.GetEnvironmentVariable("HOME") ?? "/";
        if (typedDirectory.StartsWith('~'))
        {
            typedDirectory = home + typedDirectory[1..];
        }
        if (Path.IsPathRooted(typedDirectory))
        {
            return typedDirectory.Length == 0 ? "/" : typedDirectory;
        }
        // Completers run on the pipeline thread of the session: a script block sees its current location.
        string current = ScriptBlock.Create("(Get-Location -PSProvider FileSystem).ProviderPath").Invoke()
            .Select(location => location?.BaseObject as string).FirstOrDefault() ?? Environment.CurrentDirectory;
        return Path.Combine(current, typedDirectory);
    }
}
