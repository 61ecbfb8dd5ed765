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

    public override string ToString() => text ?? "";
}
