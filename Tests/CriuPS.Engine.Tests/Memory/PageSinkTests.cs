using System.IO.Hashing;
using CriuPS.Engine.Images.Digests;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Native.Memory;
using Xunit;

namespace CriuPS.Engine.Tests.Memory;

public class PageSinkTests
{
    private static readonly Address Base = new(0x7f0000000000);

    // Concurrent: written (and hashed) on threads of their own; not: on the caller's thread, as for one batch of pages.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void WritesBatchesInOrderLeavingOutZeroPagesWhereAllowed(bool concurrent)
    {
        var entries = new List<PagemapEntry>();
        using var file = new MemoryStream();
        using (var sink = new PageSink(file, new PagemapBuilder(entries), concurrent))
        {
            // Batch 1: pages 0..3 with page 1 all zero (skippable); batch 2: pages 4..5, page 4 zero but not skippable.
            var first = sink.Rent();
            Fill(first, 0, 4, zeroPage: 1);
            sink.Submit(first, new[] { new PageSink.Run(Pages(0, 4), 0, PagemapFlags.Present, SkipZeroPages: true) });
            var second = sink.Rent();
            Fill(second, 4, 2, zeroPage: 4);
            sink.Submit(second, new[] { new PageSink.Run(Pages(4, 2), 0, PagemapFlags.Present | PagemapFlags.Lazy, SkipZeroPages: false) });
            sink.Complete();
            Assert.Equal(5UL, sink.Written.Value);
            Assert.Equal(1UL, sink.ZeroSkipped.Value);
        }

        Assert.Equal(new[] { (0UL, 1UL), (2UL, 2UL), (4UL, 2UL) }, entries.Select(e => ((e.Vaddr - Base.Value) >> Page.Shift, e.NrPages)));
        var bytes = file.ToArray();
        Assert.Equal(5 * Page.Size, bytes.Length);
        // The file holds pages 0, 2, 3, 4, 5 in that order, each filled with its own number (page 4 with zeros).
        Assert.Equal(new byte[] { 1, 3, 4, 0, 6 }, Enumerable.Range(0, 5).Select(i => bytes[i * Page.Size + 7]));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void DigestsWhatItWritesInFileOrder(bool concurrent)
    {
        // Batches of random pages with zero pages among them, some 40 MiB whatever a batch's size: the digest must be
        // that of the file as written.
        int batches = (48 << 20) / PageSink.BatchBytes;
        int batchPages = PageSink.BatchBytes / Page.Size;
        var entries = new List<PagemapEntry>();
        using var file = new MemoryStream();
        FileDigest? digest = null;
        var random = new Random(7);
        using (var digesting = new DigestingStream(file, "pages-1.img", (d, _) => digest = d))
        {
            using var sink = new PageSink(digesting, new PagemapBuilder(entries), concurrent);
            int next = 0;
            for (int batch = 0; batch < batches; batch++)
            {
                var buffer = sink.Rent();
                int pages = batchPages - batch % 6 * (batchPages / 20);
                random.NextBytes(buffer.AsSpan(0, pages * Page.Size));
                for (int zero = batch; zero < pages; zero += 37)
                {
                    buffer.AsSpan(zero * Page.Size, Page.Size).Clear();
                }
                sink.Submit(buffer, new[] { new PageSink.Run(Pages(next, pages), 0, PagemapFlags.Present, SkipZeroPages: true) });
                next += pages;
            }
            sink.Complete();
        }

        var written = file.ToArray();
        Assert.NotNull(digest);
        Assert.Equal(written.Length, digest!.Size);
        Assert.True(digest.BlockCount > 40);
        for (int i = 0; i < digest.BlockCount; i++)
        {
            var (offset, length) = digest.BlockRange(i);
            Assert.Equal(XxHash128.Hash(written.AsSpan((int)offset, length)), digest.Block(i).ToArray());
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ReportsAWriteFailureToTheReader(bool concurrent)
    {
        using var sink = new PageSink(new FailingStream(), new PagemapBuilder(new List<PagemapEntry>()), concurrent);
        var buffer = sink.Rent();
        Fill(buffer, 0, 1, zeroPage: -1);
        // On the caller's thread the write fails in Submit, on the writer's it is reported by the next call.
        var e = Assert.Throws<IOException>(() =>
        {
            sink.Submit(buffer, new[] { new PageSink.Run(Pages(0, 1), 0, PagemapFlags.Present, SkipZeroPages: true) });
            sink.Complete();
        });
        Assert.Equal("disk full", e.Message);
    }

    private static AddressRange Pages(int first, int count) =>
        new(Base + new ByteCount((ulong)first * Page.Size), Base + new ByteCount((ulong)(first + count) * Page.Size));

    // Page n of the run holds the byte n + 1 everywhere, except the zero page.
    private static void Fill(byte[] buffer, int firstPage, int count, int zeroPage)
    {
        for (int i = 0; i < count; i++)
        {
            buffer.AsSpan(i * Page.Size, Page.Size).Fill(firstPage + i == zeroPage ? (byte)0 : (byte)(firstPage + i + 1));
        }
    }

    private sealed class FailingStream : MemoryStream
    {
        public override void Write(ReadOnlySpan<byte> buffer) => throw new IOException("disk full");
    }
}
