namespace CriuPS.Completers;

/// <summary>How a completed word is written back on the command line: quoted when PowerShell would otherwise split or expand it.</summary>
internal static class CompletionText
{
    private static readonly char[] NeedQuotes = { ' ', '\t', '$', '`', '\'', '"', '(', ')', '{', '}', ';', ',', '&', '@', '#', '|', '<', '>' };

    /// <summary>The word without the quote it was started with, and that quote (or none).</summary>
    public static (string Word, char? Quote) Unquote(string word)
    {
        if (word.Length > 0 && word[0] is '\'' or '"')
        {
            char quote = word[0];
            var inner = word[1..];
            return (inner.EndsWith(quote) ? inner[..^1] : inner, quote);
        }
        return (word, null);
    }

    public static string Quote(string text, char? quote)
    {
        if (quote == '"')
        {
            return "\"" + text.Replace("`", "``").Replace("\"", "`\"").Replace("$", "`$") + "\"";
        }
        return quote == '\'' || text.IndexOfAny(NeedQuotes) >= 0 ? "'" + text.Replace("'", "''") + "'" : text;
    }
}
