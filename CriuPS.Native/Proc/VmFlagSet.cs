namespace CriuPS.Native.Proc;

/// <summary>
/// The VmFlags line of an area in /proc/PID/smaps ("rd wr mr mw me ac sd"), kept as the kernel wrote it: every
/// flag is two letters followed by a space. A process can have tens of thousands of areas, so no set per area.
/// </summary>
public readonly struct VmFlagSet
{
    private readonly string text;

    public VmFlagSet(ReadOnlySpan<char> line) => text = line.Trim().ToString();

    public static VmFlagSet Empty => default;

    public bool Contains(string flag)
    {
        if (flag.Length != 2)
        {
            throw new ArgumentException($"VmFlags are two letters, not '{flag}'.", nameof(flag));
        }
        var all = (text ?? "").AsSpan();
        for (int i = 0; i + 1 < all.Length; i += 3)
        {
            if (all[i] == flag[0] && all[i + 1] == flag[1])
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// Whether both hold the same flags once those of <paramref name="ignored"/> (two letters each) are left out: the
    /// kernel writes them in one order, so the two lines are walked side by side, without a string made per area.
    /// </summary>
    public bool SameAs(VmFlagSet other, ReadOnlySpan<string> ignored)
    {
        var mine = (text ?? "").AsSpan();
        var theirs = (other.text ?? "").AsSpan();
        int i = 0, j = 0;
        while (true)
        {
            i = NextKept(mine, i, ignored);
            j = NextKept(theirs, j, ignored);
            if (i + 1 >= mine.Length || j + 1 >= theirs.Length)
            {
                return i + 1 >= mine.Length && j + 1 >= theirs.Length;
            }
            if (mine[i] != theirs[j] || mine[i + 1] != theirs[j + 1])
            {
                return false;
            }
            i += 3;
            j += 3;
        }
    }

    /// <summary>The flags kept once those of <paramref name="ignored"/> are left out, as a line.</summary>
    public string Without(ReadOnlySpan<string> ignored)
    {
        var kept = new List<string>();
        foreach (var flag in ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!ignored.Contains(flag))
            {
                kept.Add(flag);
            }
        }
        return string.Join(' ', kept);
    }

    // The place of the first flag at or after i that is not ignored (past the end when none).
    private static int NextKept(ReadOnlySpan<char> all, int i, ReadOnlySpan<string> ignored)
    {
        while (i + 1 < all.Length && IsIgnored(all.Slice(i, 2), ignored))
        {
            i += 3;
        }
        return i;
    }

    private static bool IsIgnored(ReadOnlySpan<char> flag, ReadOnlySpan<string> ignored)
    {
        foreach (var name in ignored)
        {
            if (flag.SequenceEqual(name))
            {
                return true;
            }
        }
        return false;
    }

    public override string ToString() => text ?? "";
}
