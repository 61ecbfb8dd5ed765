namespace CriuPS.Native.Memory;

/// <summary>Lookups in lists of address ranges kept in address order without overlaps (pagemaps, saved runs).</summary>
public static class SortedRanges
{
    /// <summary>The index of the first item whose range ends after <paramref name="address"/> (the count when none does): a binary search.</summary>
    public static int FirstEndingAfter<T>(IReadOnlyList<T> items, Func<T, AddressRange> range, Address address)
    {
        int low = 0, high = items.Count;
        while (low < high)
        {
            int middle = (low + high) / 2;
            if (range(items[middle]).End <= address)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }
        return low;
    }
}
