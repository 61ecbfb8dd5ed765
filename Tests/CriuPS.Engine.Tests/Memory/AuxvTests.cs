using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Memory;

namespace CriuPS.Engine.Tests.Memory;

/// <summary>
/// The auxiliary vector in mm-PID.img: CRIU 4.2 refuses an mm_saved_auxv of more than 44 words on x86-64, so CriuPS
/// writes CRIU's form there and keeps the whole vector in its own field only when CRIU's form lost entries.
/// </summary>
public sealed class AuxvTests
{
    // A vector of n (type, value) entries followed by the AT_NULL pair, as /proc/PID/auxv gives it.
    private static ulong[] Vector(int entries) =>
        Enumerable.Range(1, entries).SelectMany(i => new[] { (ulong)i, (ulong)(1000 + i) }).Concat([0UL, 0UL]).ToArray();

    [Fact]
    public void LinuxSixEighteensVectorLosesOnlyItsEndInCriusFormAndNeedsNoOtherField()
    {
        // 22 entries and AT_NULL: 46 words, as Linux 6.18 gives on x86-64.
        var auxv = Vector(22);
        var mm = new MmEntry();

        MmFields.SaveAuxv(mm, auxv);

        Assert.Equal(auxv[..MmFields.CriuAuxvWords], mm.MmSavedAuxv);
        Assert.Empty(mm.CriupsSavedAuxv);
        Assert.Equal(auxv[..MmFields.CriuAuxvWords], MmFields.AuxvToRestore(mm));
    }

    [Fact]
    public void AShortVectorIsWrittenWholeAsCriuWritesIt()
    {
        var auxv = Vector(20);
        var mm = new MmEntry();

        MmFields.SaveAuxv(mm, auxv);

        Assert.Equal(auxv, mm.MmSavedAuxv);
        Assert.Empty(mm.CriupsSavedAuxv);
    }

    [Fact]
    public void AVectorWithMoreEntriesThanCriusBoundIsKeptWholeAndRestoredWhole()
    {
        var auxv = Vector(24);
        var mm = new MmEntry();

        MmFields.SaveAuxv(mm, auxv);

        Assert.Equal(MmFields.CriuAuxvWords, mm.MmSavedAuxv.Count);
        Assert.Equal(auxv[..MmFields.CriuAuxvWords], mm.MmSavedAuxv);
        Assert.Equal(auxv, mm.CriupsSavedAuxv);
        Assert.Equal(auxv, MmFields.AuxvToRestore(mm));
    }
}
