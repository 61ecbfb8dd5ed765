using CriuPS.Native.Memory;
using Xunit;

namespace CriuPS.Engine.Tests.Native;

public class HugePagesTests
{
    [Theory]
    [InlineData(2UL << 20, 21U << 26)] // MAP_HUGE_2MB
    [InlineData(1UL << 30, 30U << 26)] // MAP_HUGE_1GB
    [InlineData(64UL << 10, 16U << 26)] // MAP_HUGE_64KB
    public void SizeBitsAreTheLog2OfThePageSizeBothWays(ulong pageSize, uint bits)
    {
        Assert.Equal(bits, HugePages.SizeFlag(pageSize));
        Assert.Equal(pageSize, HugePages.PageSizeOf(bits | 0x40000));
    }

    [Fact]
    public void NoSizeBitsMeanTheDefaultSize() => Assert.Null(HugePages.PageSizeOf(0x40000));

    [Fact]
    public void APoolIsReadWhereTheMachineHasOneAndNullWhereItHasNone()
    {
        Assert.Null(HugePages.Pool(1UL << 16)); // no x86-64 machine has 64 KiB pages
        if (HugePages.DefaultPageSize() is { } size && HugePages.Pool(size) is { } pool)
        {
            Assert.Equal(size, pool.PageSize);
            Assert.True(pool.Free <= pool.Total);
        }
    }
}
