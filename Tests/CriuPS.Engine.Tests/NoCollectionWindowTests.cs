using System.Runtime;
using CriuPS.Engine.Logging;

namespace CriuPS.Engine.Tests;

/// <summary>The window that keeps the collector out of a frozen or restoring tree does not start with a collection.</summary>
[Collection(nameof(NoCollectionWindowTests))] // alone: the runtime has one no-GC region per process
public class NoCollectionWindowTests
{
    [Fact]
    public void CollectionsAreHeldOffWithoutACollectionToStartWith()
    {
        using var log = new EngineLog(new NullObserver());
        long lastBefore = GC.GetGCMemoryInfo(GCKind.Any).Index;
        using (NoCollectionWindow.Begin(log))
        {
            Assert.Equal(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
            // A region that may collect as it starts compacted the whole heap: 4.5 ms here, 2.6 ms of each restore
            // by a fresh criups-engine. (CollectionCount cannot tell: the region's start counts as one either way.)
            Assert.Equal(lastBefore, GC.GetGCMemoryInfo(GCKind.Any).Index);
        }
        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
    }

    [Fact]
    public void ARenewedWindowIsTheSameWhileMostOfItsBudgetIsLeftAndANewOneAfter()
    {
        using var log = new EngineLog(new NullObserver());
        var window = NoCollectionWindow.Begin(log);
        try
        {
            Assert.Same(window, window.Renew());
            // 40 MiB of small arrays (a restore's images are many small entries): more than half the 64 MiB budget.
            var kept = new List<byte[]>();
            for (int i = 0; i < 10_000; i++)
            {
                kept.Add(new byte[4096]);
            }
            var renewed = window.Renew();
            Assert.NotSame(window, renewed);
            window = renewed;
            Assert.Equal(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
            Assert.Same(renewed, renewed.Renew());
            GC.KeepAlive(kept);
        }
        finally
        {
            window.Dispose();
        }
        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
    }
}

[CollectionDefinition(nameof(NoCollectionWindowTests), DisableParallelization = true)]
public class NoCollectionWindowCollection;
