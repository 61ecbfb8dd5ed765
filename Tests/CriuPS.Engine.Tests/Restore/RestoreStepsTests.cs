using CriuPS.Engine.Restore;

namespace CriuPS.Engine.Tests.Restore;

/// <summary>The order of a restore as data (what restore.log, the phases and the failure points rely on).</summary>
public class RestoreStepsTests
{
    [Fact]
    public void EachStepHasANameOfItsOwn()
    {
        var names = RestoreSteps.Order.Select(s => s.Name).ToList();
        Assert.Equal(names.Distinct().ToList(), names);
    }

    // Nothing is created before the images are verified, read and checked: a failure there has nothing to undo.
    [Fact]
    public void TheImagesAreVerifiedReadAndCheckedBeforeAnythingIsMade()
    {
        Assert.Equal(["verification", "images", "checks"], RestoreSteps.Order.Take(3).Select(s => s.Name));
        Assert.Equal(["Verifying images", "Reading images"], RestoreSteps.Order.Take(3).Select(s => s.Phase).OfType<string>());
        Assert.All(RestoreSteps.Order.Take(3), s => Assert.Null(s.FailAfter));
    }

    // The failure points a test may ask for (CRIUPS_FAIL_AT): a restore passes them in the order FailurePoint.Restore
    // gives, mid-memory inside the restore of the pages.
    [Fact]
    public void ARestorePassesItsFailurePointsInTheirOrder()
    {
        var afterSteps = RestoreSteps.Order.Select(s => s.FailAfter).OfType<string>().ToList();
        Assert.Equal(FailurePoint.Restore.Where(p => p != FailurePoint.MidMemory).ToList(), afterSteps);
    }
}
