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

    /// <summary>The addresses in any of <paramref name="ranges"/> (in any order, overlapping or not), in address order without overlaps.</summary>
    public static List<AddressRange> Union(IEnumerable<AddressRange> ranges)
    {
        var sorted = new List<AddressRange>(ranges);
        sorted.Sort((a, b) => a.Start.Value.CompareTo(b.Start.Value));
        var result = new List<AddressRange>(sorted.Count);
        foreach (var range in sorted)
        {
            if (range.Length.Value == 0)
            {
                continue;
            }
            if (result.Count > 0 && range.Start <= result[^1].End)
            {
                result[^1] = result[^1] with { End = range.End > result[^1].End ? range.End : result[^1].End };
            }
            else
            {
                result.Add(range);
            }
        }
        return result;
    }

    /// <summary>The addresses in both lists, in address order (each list in address order without overlaps).</summary>
    public static List<AddressRange> Intersect(IReadOnlyList<AddressRange> a, IReadOnlyList<AddressRange> b)
    {
        var result = new List<AddressRange>();
        int i = 0, j = 0;
        while (i < a.Count && j < b.Count)
        {
            var part = a[i].Intersect(b[j]);
            if (part.Length.Value > 0)
            {
                result.Add(part);
            }
            // Whichever ends first can meet nothing further in the other list.
            if (a[i].End <= b[j].End)
            {
                i++;
            }
            else
            {
                j++;
            }
        }
        return result;
    }

    /// <summary>The addresses of <paramref name="a"/> that are not in <paramref name="b"/>, in address order (both in address order without overlaps).</summary>
    public static List<AddressRange> Subtract(IReadOnlyList<AddressRange> a, IReadOnlyList<AddressRange> b)
    {
        var result = new List<AddressRange>();
        int j = 0;
        foreach (var range in a)
        {
            var start = range.Start;
            while (j < b.Count && b[j].End <= start)
            {
                j++;
            }
            for (int k = j; k < b.Count && b[k].Start < range.End; k++)
            {
                if (b[k].Start > start)
                {
                    result.Add(new AddressRange(start, b[k].Start));
                }
                start = b[k].End > start ? b[k].End : start;
            }
            if (start < range.End)
            {
                result.Add(new AddressRange(start, range.End));
            }
        }
        return result;
    }
}
