using System.Collections.ObjectModel;
using System.Management.Automation;
using CriuPS.Engine.Privileges;

namespace CriuPS;

/// <summary>How the cmdlets that read images turn -Path patterns into file system paths.</summary>
internal static class PathPatterns
{
    /// <summary>
    /// The paths <paramref name="patterns"/> resolve to, in order. A pattern that matches nothing is an ImageNotFound
    /// error and the others go on; what a wildcard matches is kept only when <paramref name="wanted"/> says so (./img/*
    /// also matches dump.log), while a path named outright is always kept, to fail with a message of its own.
    /// </summary>
    public static IEnumerable<string> Resolve(PSCmdlet cmdlet, IEnumerable<string> patterns, Func<string, bool> wanted)
    {
        foreach (var pattern in patterns)
        {
            Collection<string> resolved;
            try
            {
                resolved = cmdlet.GetResolvedProviderPathFromPSPath(pattern, out _);
            }
            catch (ItemNotFoundException e)
            {
                // A path that is there but hidden from this session by a directory it may not search looks missing.
                var denied = WildcardPattern.ContainsWildcardCharacters(pattern)
                    ? null
                    : PathAccess.Denial(cmdlet.GetUnresolvedProviderPathFromPSPath(pattern), "the image path");
                cmdlet.WriteError(denied is null ? new ErrorRecord(e, "ImageNotFound", ErrorCategory.ObjectNotFound, pattern) : ErrorRecords.From(denied, pattern));
                continue;
            }
            bool wildcard = WildcardPattern.ContainsWildcardCharacters(pattern);
            foreach (var path in resolved.Where(p => !wildcard || wanted(p)))
            {
                yield return path;
            }
        }
    }
}
