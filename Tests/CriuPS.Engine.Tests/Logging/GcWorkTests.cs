using CriuPS.Engine.Logging;

namespace CriuPS.Engine.Tests.Logging;

/// <summary>What a phase's line says of the collector: collections that ran, and allocations worth a word.</summary>
public class GcWorkTests
{
    private static readonly GcWork Start = new(Collections: 7, Allocated: 100L << 20);

    [Fact]
    public void APhaseWithoutCollectionsThatAllocatedLittleSaysNothing() =>
        Assert.Equal("", new GcWork(7, (100L << 20) + 1000).Since(Start));

    [Fact]
    public void APhaseWithoutCollectionsSaysWhatItAllocatedFromAMiBOn() =>
        Assert.Equal(" (no garbage collection, 5 MiB allocated)", new GcWork(7, 105L << 20).Since(Start));

    [Theory]
    [InlineData(8, " (1 garbage collection, 0 MiB allocated)")]
    [InlineData(10, " (3 garbage collections, 0 MiB allocated)")]
    public void CollectionsAreCountedWhateverWasAllocated(long collections, string said) =>
        Assert.Equal(said, new GcWork(collections, 100L << 20).Since(Start));
}
