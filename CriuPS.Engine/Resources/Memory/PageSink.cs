using System.Collections.Concurrent;
using System.Diagnostics;
using CriuPS.Engine.Images.Digests;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// The writing half of a dump's page copy, on a thread of its own so that the next batch is read out of the process
/// while this one is written: it leaves out all-zero pages where that is allowed, appends the others to the pages
/// file and records them in the pagemap, batch after batch in the order they were read. On two cores this takes the
/// zero check and the write (a third and a half of the copy) out of the reading thread's way.
/// <para>
/// When the pages file is digested (<see cref="DigestingStream"/>), a third thread hashes each batch's pages while
/// the writer writes them. The writer is the busiest stage of the copy on this kind of VM (it works 80 to 96 % of the
/// copy's time, writing to tmpfs, while the reader waits 100 to 500 ms per GiB for buffers): hashed on it (35 to
/// 48 ms per GiB), the pages made 1 GiB dumps a median 4.8 % longer, hashed beside it 1.4 % (sessions of 20 to 30
/// paired dumps). A buffer is free again once both are done with it.
/// </para>
/// <para>
/// Pages that fit in one batch are written on the caller's thread instead (<see cref="PageSink(Stream, PagemapBuilder, bool)"/>):
/// with nothing to overlap, the two threads a process's copy would start, and the hand-overs between them, are all
/// it would add, and on a loaded machine each hand-over waits for a time slice (a 32-process tree of 27 pages each
/// spent 1 to 23 ms per process in its copy of 0.1 ms).
/// </para>
/// </summary>
internal sealed class PageSink : IDisposable
{
    /// <summary>
    /// Bytes of one batch: large reads and writes, few system calls, and a batch still in the CPU's last-level cache
    /// (32 MiB here, which the page cache's pages being written share) when it is written and hashed. With 8 MiB
    /// batches the four buffers alone filled it: 1 GiB dumps took 0.50 to 0.52 s at best against 0.45 to 0.48 s with
    /// 2 MiB (bench, warm, 5 runs each, 2026-12-07).
    /// </summary>
    public const int BatchBytes = 2 << 20;

    // Four buffers: one being read into, one being written, one being hashed when the hashing lags, one ready.
    private const int BufferCount = 4;

    // Buffers outlive dumps: fresh memory is expensive to touch on this kind of VM (seconds per GiB), and a warm
    // buffer costs nothing the next time. At most BufferCount of them exist.
    private static readonly ConcurrentBag<byte[]> Warm = new();

    private readonly Stream file;
    private readonly DigestingStream? digested;
    private readonly PagemapBuilder pagemap;
    private readonly BlockingCollection<byte[]> free = new();
    private readonly BlockingCollection<Batch> pending = new(BufferCount);
    private readonly BlockingCollection<Batch> toHash = new(BufferCount);
    private readonly Thread? writer;
    private readonly Thread? hasher;
    private Exception? failure;

    /// <param name="concurrent">Whether to write (and hash) on threads of their own, beside the reading: for more
    /// than one batch of pages.</param>
    public PageSink(Stream file, PagemapBuilder pagemap, bool concurrent)
    {
        this.file = file;
        this.pagemap = pagemap;
        digested = file as DigestingStream;
        for (int i = 0; i < (concurrent ? BufferCount : 1); i++)
        {
            free.Add(Warm.TryTake(out var buffer) ? buffer : GC.AllocateUninitializedArray<byte>(BatchBytes, pinned: true));
        }
        if (!concurrent)
        {
            return;
        }
        writer = new Thread(WriteAll) { IsBackground = true, Name = "CriuPS page writer" };
        writer.Start();
        if (digested is not null)
        {
            hasher = new Thread(HashAll) { IsBackground = true, Name = "CriuPS page hasher" };
            hasher.Start();
        }
    }

    /// <summary>
    /// Before a freeze, on a thread of its own: the buffers a copy of up to <paramref name="largest"/> bytes of one
    /// process takes, allocated and touched, up to the bytes it will fill. Fresh memory costs its first touch (a page
    /// fault per page: 1.4 to 1.8 s per GiB on this kind of VM), which in criups-engine, a fresh process each time, fell
    /// inside the frozen window: some 20 MiB of buffers were first touched while a 5,000-area process's pages were
    /// read into them. A session keeps its buffers warm, and finds nothing to do here after its first dump.
    /// </summary>
    public static Task PrepareAhead(ByteCount largest)
    {
        int count = largest.Value > BatchBytes ? BufferCount : 1;
        int touched = (int)Math.Min(BatchBytes, largest.Value);
        return Task.Run(() =>
        {
            for (int i = Warm.Count; i < count; i++)
            {
                var buffer = GC.AllocateUninitializedArray<byte>(BatchBytes, pinned: true);
                for (int at = 0; at < touched; at += Page.Size)
                {
                    buffer[at] = 0;
                }
                Warm.Add(buffer);
            }
        });
    }

    /// <summary>Pages appended to the pages file (valid once <see cref="Complete"/> has returned).</summary>
    public PageCount Written { get; private set; }

    /// <summary>All-zero pages left out.</summary>
    public PageCount ZeroSkipped { get; private set; }

    /// <summary>
    /// How long the writer worked (zero checks and writes): against the copy's duration, how much room the writing
    /// thread has left.
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
    /// in order, after those of earlier batches, and the buffer is free again once they are (and hashed).
    /// </summary>
    public void Submit(byte[] buffer, IReadOnlyList<Run> runs)
    {
        if (writer is null)
        {
            Write(new Batch(buffer, runs, 1));
            ThrowIfFailed();
            return;
        }
        pending.Add(new Batch(buffer, runs, hasher is null ? 1 : 2));
    }

    /// <summary>Waits until every submitted batch is written (and hashed); throws what the writer failed with.</summary>
    public void Complete()
    {
        pending.CompleteAdding();
        writer?.Join();
        hasher?.Join();
        ThrowIfFailed();
    }

    public void Dispose()
    {
        if (!pending.IsAddingCompleted)
        {
            pending.CompleteAdding();
        }
        writer?.Join();
        hasher?.Join();
        while (free.TryTake(out var buffer) && Warm.Count < BufferCount)
        {
            Warm.Add(buffer);
        }
        free.Dispose();
        pending.Dispose();
        toHash.Dispose();
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
            Write(batch);
        }
        toHash.CompleteAdding();
    }

    // Writes a batch's pages (and hashes them, when no hasher thread does); the buffer is released either way.
    private void Write(Batch batch)
    {
        long start = Stopwatch.GetTimestamp();
        try
        {
            if (failure is null)
            {
                // The pages to write first (the zero checks), for the hasher to hash while they are written.
                foreach (var run in batch.Runs)
                {
                    Plan(run, batch);
                }
            }
            if (hasher is not null)
            {
                toHash.Add(batch);
            }
            foreach (var (offset, length) in batch.Written)
            {
                var bytes = batch.Buffer.AsSpan(offset, length);
                if (hasher is not null)
                {
                    digested!.WriteWithoutDigest(bytes);
                }
                else
                {
                    file.Write(bytes); // a digesting stream digests them too
                }
            }
            BusyTime += Stopwatch.GetElapsedTime(start);
        }
        catch (Exception e)
        {
            failure ??= e;
        }
        finally
        {
            Release(batch);
        }
    }

    // Digests what the writer writes, in the same order, beside it.
    private void HashAll()
    {
        foreach (var batch in toHash.GetConsumingEnumerable())
        {
            try
            {
                foreach (var (offset, length) in batch.Written)
                {
                    digested!.Digest(batch.Buffer.AsSpan(offset, length));
                }
            }
            catch (Exception e)
            {
                failure ??= e;
            }
            finally
            {
                Release(batch);
            }
        }
    }

    // The buffer is free once the last of the writer and the hasher is done with it.
    private void Release(Batch batch)
    {
        if (Interlocked.Decrement(ref batch.Holders) == 0)
        {
            free.Add(batch.Buffer);
        }
    }

    // Decides which of a run's pages are written, leaving out all-zero pages where that is allowed, and records
    // them in the pagemap.
    private void Plan(Run run, Batch batch)
    {
        var data = batch.Buffer.AsSpan(run.Offset, (int)run.Range.Length.Value);
        int pages = data.Length >> Page.Shift;
        int i = 0;
        while (i < pages)
        {
            if (run.SkipZeroPages && IsZero(data, i))
            {
                ZeroSkipped += new PageCount(1);
                i++;
                continue;
            }
            int first = i;
            while (i < pages && !(run.SkipZeroPages && IsZero(data, i)))
            {
                i++;
            }
            batch.Written.Add((run.Offset + (first << Page.Shift), (i - first) << Page.Shift));
            var count = new PageCount((ulong)(i - first));
            pagemap.Add(run.Range.Start + new ByteCount((ulong)first << Page.Shift), count, run.Flags);
            Written += count;
        }
    }

    private static bool IsZero(ReadOnlySpan<byte> data, int page) =>
        data.Slice(page << Page.Shift, Page.Size).IndexOfAnyExcept((byte)0) < 0;

    /// <summary>A run of pages read into a batch's buffer at <paramref name="Offset"/>, and how the pagemap records it.</summary>
    public readonly record struct Run(AddressRange Range, int Offset, PagemapFlags Flags, bool SkipZeroPages);

    private sealed class Batch(byte[] buffer, IReadOnlyList<Run> runs, int holders)
    {
        public byte[] Buffer { get; } = buffer;

        public IReadOnlyList<Run> Runs { get; } = runs;

        /// <summary>The stretches of the buffer that go into the pages file, in order.</summary>
        public List<(int Offset, int Length)> Written { get; } = new();

        /// <summary>The writer, and the hasher when there is one, until each is done with the buffer.</summary>
        public int Holders = holders;
    }
}
