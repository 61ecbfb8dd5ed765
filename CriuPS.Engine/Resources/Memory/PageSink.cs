using System.Collections.Concurrent;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// The writing half of a dump's page copy, on a thread of its own so that the next batch is read out of the process
/// while this one is written: it leaves out all-zero pages where that is allowed, appends the others to the pages
/// file and records them in the pagemap, batch after batch in the order they were read. On two cores this takes the
/// zero check and the write (a third and a half of the copy) out of the reading thread's way.
/// </summary>
internal sealed class PageSink : IDisposable
{
    /// <summary>Bytes of one batch: large reads and writes, few system calls.</summary>
    public const int BatchBytes = 8 << 20;

    // Three buffers: one being read into, one being written, one ready; more buys nothing on two cores.
    private const int BufferCount = 3;

    // Buffers outlive dumps: fresh memory is expensive to touch on this kind of VM (seconds per GiB), and a warm
    // buffer costs nothing the next time. At most BufferCount of them exist.
    private static readonly ConcurrentBag<byte[]> Warm = new();

    private readonly Stream file;
    private readonly PagemapBuilder pagemap;
    private readonly BlockingCollection<byte[]> free = new();
    private readonly BlockingCollection<Batch> pending = new(BufferCount);
    private readonly Thread writer;
    private Exception? failure;

    public PageSink(Stream file, PagemapBuilder pagemap)
    {
        this.file = file;
        this.pagemap = pagemap;
        for (int i = 0; i < BufferCount; i++)
        {
            free.Add(Warm.TryTake(out var buffer) ? buffer : GC.AllocateUninitializedArray<byte>(BatchBytes, pinned: true));
        }
        writer = new Thread(WriteAll) { IsBackground = true, Name = "CriuPS page writer" };
        writer.Start();
    }

    /// <summary>Pages appended to the pages file (valid once <see cref="Complete"/> has returned).</summary>
    public PageCount Written { get; private set; }

    /// <summary>All-zero pages left out.</summary>
    public PageCount ZeroSkipped { get; private set; }

    /// <summary>
    /// How long the writer worked (zero checks, and writes through the output's stream, which digests them): against
    /// the copy's duration, how much room the writing thread has left.
    /// </summary>
    public TimeSpan BusyTime { get; private set; }

    /// <summary>A buffer of <see cref="BatchBytes"/> to read the next batch into; waits while all are in use.</summary>
    public byte[] Rent()
    {
        ThrowIfFailed();
        var buffer = free.Take();
        ThrowIfFailed();
        return buffer;
    }

    /// <summary>
    /// Hands a filled buffer to the writer: each run's bytes lie at its offset in the buffer. The runs are written
    /// in order, after those of earlier batches, and the buffer is free again once they are.
    /// </summary>
    public void Submit(byte[] buffer, IReadOnlyList<Run> runs) => pending.Add(new Batch(buffer, runs));

    /// <summary>Waits until every submitted batch is written; throws what the writer failed with.</summary>
    public void Complete()
    {
        pending.CompleteAdding();
        writer.Join();
        ThrowIfFailed();
    }

    public void Dispose()
    {
        if (!pending.IsAddingCompleted)
        {
            pending.CompleteAdding();
        }
        writer.Join();
        while (free.TryTake(out var buffer) && Warm.Count < BufferCount)
        {
            Warm.Add(buffer);
        }
        free.Dispose();
        pending.Dispose();
    }

    private void ThrowIfFailed()
    {
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
    }

    private void WriteAll()
    {
        foreach (var batch in pending.GetConsumingEnumerable())
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                if (failure is null)
                {
                    foreach (var run in batch.Runs)
                    {
                        Emit(run.Range, batch.Buffer.AsSpan(run.Offset, (int)run.Range.Length.Value), run.Flags, run.SkipZeroPages);
                    }
                }
                BusyTime += System.Diagnostics.Stopwatch.GetElapsedTime(start);
            }
            catch (Exception e)
            {
                failure = e;
            }
            finally
            {
                free.Add(batch.Buffer);
            }
        }
    }

    // Writes a run's pages, leaving out all-zero pages where that is allowed.
    private void Emit(AddressRange run, ReadOnlySpan<byte> data, PagemapFlags flags, bool skipZeroPages)
    {
        int pages = data.Length >> Page.Shift;
        int i = 0;
        while (i < pages)
        {
            if (skipZeroPages && IsZero(data, i))
            {
                ZeroSkipped += new PageCount(1);
                i++;
                continue;
            }
            int first = i;
            while (i < pages && !(skipZeroPages && IsZero(data, i)))
            {
                i++;
            }
            file.Write(data.Slice(first << Page.Shift, (i - first) << Page.Shift));
            var count = new PageCount((ulong)(i - first));
            pagemap.Add(run.Start + new ByteCount((ulong)first << Page.Shift), count, flags);
            Written += count;
        }
    }

    private static bool IsZero(ReadOnlySpan<byte> data, int page) =>
        data.Slice(page << Page.Shift, Page.Size).IndexOfAnyExcept((byte)0) < 0;

    /// <summary>A run of pages read into a batch's buffer at <paramref name="Offset"/>, and how the pagemap records it.</summary>
    public readonly record struct Run(AddressRange Range, int Offset, PagemapFlags Flags, bool SkipZeroPages);

    private sealed record Batch(byte[] Buffer, IReadOnlyList<Run> Runs);
}
