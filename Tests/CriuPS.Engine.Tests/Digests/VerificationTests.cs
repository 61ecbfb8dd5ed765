using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Digests;
using CriuPS.Engine.Tests.Images;

namespace CriuPS.Engine.Tests.Digests;

/// <summary>
/// An image directory checked against its manifest finds each kind of damage, names the file and the problem, and
/// lets through what the manifest leaves out on purpose.
/// </summary>
public sealed class VerificationTests : IDisposable
{
    private const int Block = BlockDigester.DefaultBlockBytes;

    private readonly TempDirectory temp = new();

    public VerificationTests()
    {
        // A small image: files of one block, none, and several, written and digested as a dump does.
        var files = new Dictionary<string, byte[]>
        {
            ["inventory.img"] = DigestTests.RandomBytes(130, 1),
            ["core-7.img"] = DigestTests.RandomBytes(2000, 2),
            ["pagemap-7.img"] = DigestTests.RandomBytes(90, 3),
            ["pages-1.img"] = DigestTests.RandomBytes(3 * Block + 4096, 4),
            ["fdinfo-2.img"] = [],
        };
        foreach (var (name, data) in files)
        {
            File.WriteAllBytes(temp.PathOf(name), data);
        }
        using var stream = File.Create(temp.PathOf(DigestManifest.FileName));
        DigestManifest.Write(stream, DigestManifest.FileName, files.Select(f => DigestTests.Digest(f.Key, f.Value)));
    }

    public void Dispose() => temp.Dispose();

    [Fact]
    public void AnIntactImageVerifies()
    {
        // What the manifest leaves out: logs, stats (written after the commit), the parent link, other files.
        File.WriteAllText(temp.PathOf("dump.log"), "log");
        File.WriteAllText(temp.PathOf("restore.log"), "log");
        File.WriteAllBytes(temp.PathOf("stats-dump"), [1, 2, 3]);
        File.WriteAllText(temp.PathOf("notes.txt"), "mine");
        Directory.CreateSymbolicLink(temp.PathOf("parent"), "/nonexistent");

        var result = ImageVerifier.Verify(temp.Path, deferPages: false);

        Assert.NotNull(result.Manifest);
        Assert.Empty(result.Problems);
        Assert.Equal((5, 3L * Block + 4096 + 130 + 2000 + 90), (result.Files, result.Bytes));
    }

    [Fact]
    public void AFlippedByteIsFoundInItsBlock()
    {
        Flip("pages-1.img", 2 * Block + 100);

        var problem = Assert.Single(ImageVerifier.Verify(temp.Path, deferPages: false).Problems);

        Assert.Equal(temp.PathOf("pages-1.img"), problem.Path);
        Assert.Equal($"damaged: bytes {2 * Block} to {3 * Block - 1} (block 3 of 4) differ from what was written", problem.Problem);
    }

    [Fact]
    public void AFlippedByteOfASmallFileIsFound()
    {
        Flip("core-7.img", 1500);

        var problem = Assert.Single(ImageVerifier.Verify(temp.Path, deferPages: false).Problems);

        Assert.Equal(("core-7.img", "damaged: bytes 0 to 1999 (block 1 of 1) differ from what was written"), (problem.File, problem.Problem));
    }

    [Fact]
    public void ATruncatedFileIsFound()
    {
        using (var file = File.OpenWrite(temp.PathOf("pages-1.img")))
        {
            file.SetLength(Block);
        }

        var problem = Assert.Single(ImageVerifier.Verify(temp.Path, deferPages: false).Problems);

        Assert.Equal(("pages-1.img", $"truncated: {Block} bytes, but {3 * Block + 4096} were written"), (problem.File, problem.Problem));
    }

    [Fact]
    public void JunkAppendedIsFound()
    {
        File.AppendAllText(temp.PathOf("pagemap-7.img"), "junk");

        var problem = Assert.Single(ImageVerifier.Verify(temp.Path, deferPages: false).Problems);

        Assert.Equal(("pagemap-7.img", "94 bytes, but 90 were written (something was added)"), (problem.File, problem.Problem));
    }

    [Fact]
    public void AMissingFileIsFound()
    {
        File.Delete(temp.PathOf("fdinfo-2.img"));

        var problem = Assert.Single(ImageVerifier.Verify(temp.Path, deferPages: false).Problems);

        Assert.Equal(("fdinfo-2.img", "missing: the checkpoint wrote it (0 bytes)"), (problem.File, problem.Problem));
    }

    [Fact]
    public void AnImageFileTheCheckpointDidNotWriteIsFound()
    {
        File.WriteAllBytes(temp.PathOf("core-8.img"), [1, 2, 3]);

        var problem = Assert.Single(ImageVerifier.Verify(temp.Path, deferPages: false).Problems);

        Assert.Equal(("core-8.img", "not written by the checkpoint: criups-digests.img does not list it"), (problem.File, problem.Problem));
    }

    [Fact]
    public void ADamagedManifestIsAProblemOfItsOwn()
    {
        Flip(DigestManifest.FileName, 6);

        var result = ImageVerifier.Verify(temp.Path, deferPages: false);

        Assert.Null(result.Manifest);
        Assert.Equal(DigestManifest.FileName, Assert.Single(result.Problems).File);
    }

    [Fact]
    public void EveryProblemIsReportedAndTheRestoreRefusalNamesTheFirst()
    {
        Flip("core-7.img", 0);
        File.Delete(temp.PathOf("inventory.img"));

        var chain = ImageVerifier.VerifyChain(temp.Path, deferPages: false);
        var e = Assert.Throws<CheckpointException>(chain.ThrowIfDamaged);

        Assert.Equal(2, chain.Problems.Count());
        Assert.Equal(CheckpointErrorKind.ImageCorrupt, e.Kind);
        Assert.Equal(temp.PathOf("core-7.img"), e.Target);
        Assert.Contains("core-7.img: damaged", e.Message, StringComparison.Ordinal);
        Assert.Contains("inventory.img: missing", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ALazyRestoreChecksThePagesSizeUpFrontAndTheirBlocksAsTheyAreRead()
    {
        Flip("pages-1.img", Block + 10);

        var chain = ImageVerifier.VerifyChain(temp.Path, deferPages: true);
        Assert.Empty(chain.Problems);
        var pages = PageVerifier.For(chain).Find(temp.PathOf("pages-1.img"));
        Assert.NotNull(pages);
        using var file = File.OpenHandle(temp.PathOf("pages-1.img"));

        pages!.Verify(file, 0, Block); // block 1: intact
        pages.Verify(file, 3 * Block, 4096); // block 4 (the short last one): intact
        var e = Assert.Throws<CheckpointException>(() => pages.Verify(file, 2 * Block - 4096, 8192)); // blocks 1 and 2

        Assert.Equal((CheckpointErrorKind.ImageCorrupt, (object?)temp.PathOf("pages-1.img")), (e.Kind, e.Target));
        Assert.Contains($"bytes {Block} to {2 * Block - 1} (block 2 of 4)", e.Message, StringComparison.Ordinal);

        File.Delete(temp.PathOf("core-7.img"));
        Assert.Equal("core-7.img", Assert.Single(ImageVerifier.VerifyChain(temp.Path, deferPages: true).Problems).File);
    }

    [Fact]
    public void ResealingRecordsAFileEditedOnPurpose()
    {
        File.WriteAllBytes(temp.PathOf("core-7.img"), DigestTests.RandomBytes(2100, 9));
        Assert.Single(ImageVerifier.Verify(temp.Path, deferPages: false).Problems);

        Assert.True(DigestManifest.Reseal(temp.PathOf("core-7.img")));

        Assert.Empty(ImageVerifier.Verify(temp.Path, deferPages: false).Problems);
        Assert.False(DigestManifest.Reseal(temp.PathOf("dump.log")));
        Assert.Equal([DigestManifest.FileName], Directory.EnumerateFiles(temp.Path, ".*").Concat(Directory.EnumerateFiles(temp.Path, "criups*")).Select(Path.GetFileName));
    }

    [Fact]
    public void ImagesWithoutAManifestAreUnverifiedNotDamaged()
    {
        File.Delete(temp.PathOf(DigestManifest.FileName));

        var chain = ImageVerifier.VerifyChain(temp.Path, deferPages: false);
        chain.ThrowIfDamaged();
        var model = chain.ToModel();

        Assert.Equal((false, false, 0), (model.HasDigests, model.Intact, model.Problems.Count));
        Assert.Equal([temp.Path], model.Unverified);
    }

    private void Flip(string name, long offset)
    {
        using var file = File.Open(temp.PathOf(name), FileMode.Open, FileAccess.ReadWrite);
        file.Position = offset;
        int b = file.ReadByte();
        file.Position = offset;
        file.WriteByte((byte)(b ^ 0x40));
    }
}
