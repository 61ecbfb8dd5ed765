using CriuPS.Engine.Dump;

namespace CriuPS.Engine.Tests.Dump;

/// <summary>The orders of a checkpoint and a pre-dump as data (what the logs and the failure points rely on).</summary>
public class DumpStepsTests
{
    public static TheoryData<string> Orders => new() { nameof(DumpSteps.Checkpoint), nameof(DumpSteps.PreDump) };

    [Theory]
    [MemberData(nameof(Orders))]
    public void EachStepHasANameOfItsOwn(string order)
    {
        var names = Order(order).Select(s => s.Name).ToList();
        Assert.Equal(names.Distinct().ToList(), names);
    }

    // The failure points a test may ask for (CRIUPS_FAIL_AT): a checkpoint passes them in the order FailurePoint.Dump
    // gives, mid-memory inside the copy of the pages.
    [Fact]
    public void ACheckpointPassesItsFailurePointsInTheirOrder()
    {
        var afterSteps = DumpSteps.Checkpoint.Select(s => s.FailAfter).OfType<string>().ToList();
        Assert.Equal(FailurePoint.Dump.Where(p => p != FailurePoint.MidMemory).ToList(), afterSteps);
    }

    private static IReadOnlyList<DumpStep> Order(string name) =>
        name == nameof(DumpSteps.Checkpoint) ? DumpSteps.Checkpoint : DumpSteps.PreDump;
}
