namespace CriuPS.Engine.Errors;

/// <summary>
/// A value of an image file that no checkpoint writes: <see cref="CheckpointErrorKind.ImageCorrupt"/>, naming the file
/// and the entry as Import-CheckpointImageFile shows it (<c>entries[3]</c>, <c>vmas[16]</c>), so that the damage can be
/// found and looked at.
/// </summary>
internal static class ImageDamage
{
    public const string Action = "The image is damaged; take a new checkpoint.";

    public static CheckpointException In(string path, string problem, Exception? inner = null) =>
        new(CheckpointErrorKind.ImageCorrupt, $"{path}: {problem}", path, Action, inner);

    /// <summary>
    /// Indexes the entries of a file by a key each must have alone (an id that other images refer to), or refuses the
    /// file naming the two entries that share one: which of them another image meant cannot be known.
    /// </summary>
    /// <param name="entry">How an entry is named in a message, from its position: <c>entries[2]</c>.</param>
    public static Dictionary<TKey, T> UniqueBy<T, TKey>(IReadOnlyList<T> items, Func<T, TKey> key, string path, string what, Func<int, string> entry)
        where TKey : notnull
    {
        var index = new Dictionary<TKey, T>(items.Count);
        var positions = new Dictionary<TKey, int>(items.Count);
        for (int i = 0; i < items.Count; i++)
        {
            var value = key(items[i]);
            if (positions.TryGetValue(value, out int first))
            {
                throw In(path, $"{entry(first)} and {entry(i)} have the same {what}, {value}; each must have its own.");
            }
            positions[value] = i;
            index[value] = items[i];
        }
        return index;
    }

    /// <summary>The name of the i-th entry of a file, as Import-CheckpointImageFile shows it.</summary>
    public static string Entry(int i) => $"entries[{i}]";
}
