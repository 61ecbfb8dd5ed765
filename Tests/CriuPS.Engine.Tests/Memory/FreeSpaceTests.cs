using CriuPS.Native.Memory;

namespace CriuPS.Engine.Tests.Memory;

/// <summary>Finding room for the injection area and the parked vDSO in a layout of taken ranges.</summary>
public sealed class FreeSpaceTests
{
    private static readonly ByteCount Size = new(0x8000), Guard = new(0x1000);

    private static AddressRange R(ulong start, ulong end) => new(start, end);

    [Fact]
    public void Takes_the_highest_gap_below_the_limit_that_holds_the_size_and_both_guards()
    {
        // Gaps below 0x100000: [0xe7000, 0xf0000) is short of the size and guards by one page, [0x40000, 0x90000) fits.
        var taken = new[] { R(0xf0000, 0x100000), R(0x90000, 0xe7000), R(0x10000, 0x40000) };
        var at = FreeSpace.HighestFit(taken, Size, Guard, new Address(0x100000), new Address(0x10000));
        Assert.Equal(new Address(0x90000 - 0x1000 - 0x8000), at);

        var roomy = new[] { R(0xf0000, 0x100000), R(0xe5000, 0xe6000) };
        Assert.Equal(new Address(0xe6000 + 0x1000), FreeSpace.HighestFit(roomy, Size, Guard, new Address(0xf0000), new Address(0x10000)));
    }

    [Fact]
    public void Overlapping_and_unordered_ranges_are_one_taken_block()
    {
        var taken = new[] { R(0x50000, 0x70000), R(0x60000, 0xa0000), R(0x20000, 0x58000) };
        // Above the block, 32 KiB up to the limit: short of the guards. Below it, room down to the floor only when it is low enough.
        Assert.Null(FreeSpace.HighestFit(taken, Size, Guard, new Address(0xa8000), new Address(0x18000)));
        Assert.Equal(new Address(0x20000 - 0x1000 - 0x8000), FreeSpace.HighestFit(taken, Size, Guard, new Address(0xa8000), new Address(0x10000)));
    }

    [Fact]
    public void Nothing_fits_in_a_full_layout()
    {
        Assert.Null(FreeSpace.HighestFit(new[] { R(0x10000, 0x100000) }, Size, Guard, new Address(0x100000), new Address(0x10000)));
    }
}
