namespace CriuPS.Native.Memory;

/// <summary>Places for new areas in an address space whose taken ranges are known (a saved layout, a live one, or both).</summary>
public static class FreeSpace
{
    /// <summary>
    /// The highest address at which <paramref name="size"/> bytes fit entirely below <paramref name="below"/> and at or
    /// above <paramref name="lowest"/>, with <paramref name="guard"/> bytes free on either side, or null when nothing
    /// fits. The taken ranges may overlap one another and come in any order.
    /// </summary>
    public static Address? HighestFit(IEnumerable<AddressRange> taken, ByteCount size, ByteCount guard, Address below, Address lowest)
    {
        ulong need = size.Value + 2 * guard.Value;
        ulong top = below.Value;
        // Walking down from the top, each range closes the gap above it at its start.
        foreach (var range in taken.Where(r => !r.IsEmpty && r.Start < below).OrderByDescending(r => r.End))
        {
            if (range.End.Value < top && top - range.End.Value >= need && range.End.Value >= lowest.Value)
            {
                return new Address(top - guard.Value - size.Value);
            }
            top = Math.Min(top, range.Start.Value);
        }
        return top >= lowest.Value && top - lowest.Value >= need ? new Address(top - guard.Value - size.Value) : null;
    }
}
