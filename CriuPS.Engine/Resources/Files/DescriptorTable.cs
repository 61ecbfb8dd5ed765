namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// The descriptor numbers in use in a process, to foresee the numbers the kernel hands out: a new descriptor always
/// gets the lowest free number (at or above a minimum for F_DUPFD).
/// </summary>
internal sealed class DescriptorTable
{
    private readonly SortedSet<int> used;

    public DescriptorTable(IEnumerable<int> used) => this.used = new SortedSet<int>(used);

    /// <summary>Marks the lowest free number at or above <paramref name="minimum"/> as used and returns it.</summary>
    public int Take(int minimum = 0)
    {
        int number = minimum;
        foreach (var taken in used.GetViewBetween(minimum, int.MaxValue))
        {
            if (taken != number)
            {
                break;
            }
            number++;
        }
        used.Add(number);
        return number;
    }

    public void Add(int number) => used.Add(number);

    public void Release(int number) => used.Remove(number);
}
