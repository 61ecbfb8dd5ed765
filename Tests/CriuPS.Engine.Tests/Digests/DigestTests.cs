using System.IO.Hashing;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Digests;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Tests.Images;

namespace CriuPS.Engine.Tests.Digests;

/// <summary>The digests of image files: computed on the write path, equal to XxHash128 of each block, and recorded faithfully.</summary>
public sealed class DigestTests : IDisposable
{
    private const int Block = BlockDigester.DefaultBlockBytes;

    private readonly TempDirectory temp = new();

    public void Dispose() => temp.Dispose();

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(Block - 1)]
    [InlineData(Block)]
    [InlineData(3 * Block + 12345)]
    public void TheDigestingStreamPassesEveryByteOnAndDigestsEachBlockAsXxHash128Would(int size)
    {
        var data = RandomBytes(size, seed: size);
        var written = new MemoryStream();
        FileDigest? digest = null;
        TimeSpan time = TimeSpan.MinValue;
        using (var stream = new DigestingStream(written, "pages-1.img", (d, t) => (digest, time) = (d, t)))
        {
            // Writes of every size, across block boundaries, as the page writer and ImageWriter make them.
            var random = new Random(size);
            for (int offset = 0; offset < data.Length;)
            {
                int n = Math.Min(data.Length - offset, random.Next(1, 300_000));
                stream.Write(data, offset, n);
                offset += n;
            }
            Assert.Null(digest);
        }

        Assert.Equal(data, written.ToArray());
        Assert.NotNull(digest);
        Assert.Equal(("pages-1.img", (long)size, Block), (digest!.Name, digest.Size, digest.BlockBytes));
        Assert.Equal((size + Block - 1) / Block, digest.BlockCount);
        for (int i = 0; i < digest.BlockCount; i++)
        {
            var (offset, length) = digest.BlockRange(i);
            Assert.Equal(XxHash128.Hash(data.AsSpan((int)offset, length)), digest.Block(i).ToArray());
        }
        Assert.True(time >= TimeSpan.Zero);
    }

    [Fact]
    public void AFileDigestedAfterwardsEqualsTheOneDigestedWhileWritten()
    {
        var data = RandomBytes(2 * Block + 7, seed: 1);
        File.WriteAllBytes(temp.PathOf("pages-1.img"), data);
        var streamed = new BlockDigester();
        streamed.Append(data);

        var whole = DigestManifest.DigestOf(temp.PathOf("pages-1.img"), "pages-1.img");

        Assert.Null(streamed.Finish("pages-1.img").Difference(whole));
        Assert.Equal(XxHash128.Hash(data.AsSpan(2 * Block)), whole.Block(2).ToArray());
    }

    [Fact]
    public void TheManifestRoundTrips()
    {
        var files = new[]
        {
            Digest("core-1.img", RandomBytes(300, 2)),
            Digest("pages-1.img", RandomBytes(2 * Block + 1, 3)),
            Digest("pipes-data.img", []),
        };
        using (var stream = File.Create(temp.PathOf(DigestManifest.FileName)))
        {
            DigestManifest.Write(stream, DigestManifest.FileName, files.Reverse());
        }

        var manifest = DigestManifest.Read(temp.Path);

        Assert.NotNull(manifest);
        Assert.Equal(files.Select(f => f.Name), manifest!.Files.Keys.Order(StringComparer.Ordinal));
        foreach (var file in files)
        {
            var read = manifest.Files[file.Name];
            Assert.Equal((file.Size, file.BlockBytes), (read.Size, read.BlockBytes));
            Assert.Equal(file.Blocks, read.Blocks);
        }
        // Written by name: the same image always gives the same manifest.
        Assert.Equal(
            ImageReader.ReadAll(temp.PathOf(DigestManifest.FileName)).Select(e => ((CriupsDigestEntry)e.Message).Name),
            files.Select(f => f.Name).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void ADirectoryWithoutAManifestHasNone() => Assert.Null(DigestManifest.Read(temp.Path));

    [Fact]
    public void TheManifestCoversImageFilesButItselfStatsAndOtherFiles()
    {
        Assert.True(DigestManifest.Covers("core-12.img"));
        Assert.True(DigestManifest.Covers("pages-3.img"));
        Assert.True(DigestManifest.Covers("inventory.img"));
        Assert.False(DigestManifest.Covers(DigestManifest.FileName));
        Assert.False(DigestManifest.Covers("stats-dump"));
        Assert.False(DigestManifest.Covers("stats-restore"));
        Assert.False(DigestManifest.Covers("dump.log"));
        Assert.False(DigestManifest.Covers("parent"));
        Assert.False(DigestManifest.Covers(".stats-dump.partial"));
    }

    internal static FileDigest Digest(string name, byte[] data)
    {
        var digester = new BlockDigester();
        digester.Append(data);
        return digester.Finish(name);
    }

    internal static byte[] RandomBytes(int size, int seed)
    {
        var data = new byte[size];
        new Random(seed).NextBytes(data);
        return data;
    }
}
