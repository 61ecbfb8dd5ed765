using CriuPS.Engine.Resources.Files;
using Xunit;

namespace CriuPS.Engine.Tests.Files;

// The restore installs descriptors in one batch on these numbers, and checks them against the kernel's afterwards
// (the end-to-end tests restore hundreds of descriptors that way).
public class DescriptorTableTests
{
    [Fact]
    public void TakesTheLowestFreeNumberFillingGaps()
    {
        var table = new DescriptorTable(new[] { 0, 1, 3, 4 });
        Assert.Equal(2, table.Take());
        Assert.Equal(5, table.Take());
        table.Release(1);
        Assert.Equal(1, table.Take());
    }

    [Fact]
    public void TakesTheLowestFreeNumberAtOrAboveAMinimumAsFDupfdDoes()
    {
        var table = new DescriptorTable(new[] { 0, 7, 8, 10 });
        Assert.Equal(9, table.Take(7));
        Assert.Equal(11, table.Take(7));
        Assert.Equal(20, table.Take(20));
        Assert.Equal(1, table.Take());
    }
}
