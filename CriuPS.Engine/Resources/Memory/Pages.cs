using System.Buffers;
using CriuPS.Engine.Dump;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// Page contents (pagemap-PID.img + pages-N.img). Dump: find the pages worth saving, copy them out of the
/// frozen process in large batches (process_vm_readv, or /proc/PID/mem for unreadable areas) and append them
/// to the pages file (streamed: the output may be a page server), leaving out all-zero anonymous pages (they come back as fresh zero pages).
/// </summary>
internal static partial class Pages
{
    private const int BatchBytes = 8 << 20;
    private const int MaxIovecs = 1024;

    public static void Dump(DumpedProcess process, DumpSession session, IReadOnlyList<SavedVma> vmas)
    {
        var log = session.Log;
        uint pagesId = session.NextPagesId++;
        process.PagemapHead.PagesId = pagesId;
        bool useIoctl = !session.Options.ForcePagemapFile && PagemapScan.IsSupported();
        using var scanner = new PageScanner(process.Pid, useIoctl);

        var work = new List<(SavedVma Vma, List<AddressRange> Runs)>();
        ulong toCopy = 0;
        foreach (var vma in vmas.Where(v => v.Policy != PagePolicy.None))
        {
            var runs = scanner.Scan(vma.Info.Range, vma.Policy);
            toCopy += (ulong)runs.Sum(r => (long)r.Pages.Value);
            work.Add((vma, runs));
        }
        log.Detail($"pages of {process.Pid}: {toCopy} to copy from {work.Count} areas (found with {(useIoctl ? "PAGEMAP_SCAN" : "/proc/PID/pagemap")})");

        using var stream = session.Output.Create($"pages-{pagesId}.img");
        var copier = new PageCopier(process, stream, new PagemapBuilder(process.Pagemap), session, toCopy);
        foreach (var (vma, runs) in work)
        {
            copier.Copy(vma, runs);
        }
        session.Stats.PagesScanned += toCopy;
        session.Stats.PagesWritten += copier.Written.Value;
        log.Detail($"pages of {process.Pid}: {copier.Written.Value} written, {copier.ZeroSkipped.Value} zero pages left out");
    }

    /// <summary>Copies runs of pages from the process into the pages file, batch by batch.</summary>
    private sealed class PageCopier
    {
        private readonly DumpedProcess process;
        private readonly Stream file;
        private readonly PagemapBuilder pagemap;
        private readonly DumpSession session;
        private readonly ulong total;
        private readonly byte[] buffer = GC.AllocateUninitializedArray<byte>(BatchBytes, pinned: true);
        private ulong done;
        private bool failurePointPassed;

        public PageCopier(DumpedProcess process, Stream file, PagemapBuilder pagemap, DumpSession session, ulong total)
        {
            this.process = process;
            this.file = file;
            this.pagemap = pagemap;
            this.session = session;
            this.total = total;
        }

        public PageCount Written { get; private set; }

        public PageCount ZeroSkipped { get; private set; }

        public void Copy(SavedVma vma, List<AddressRange> runs)
        {
            var batch = new List<AddressRange>();
            ulong batchBytes = 0;
            foreach (var run in runs)
            {
                // Split runs so that a batch never exceeds the buffer.
                for (var start = run.Start; start < run.End;)
                {
                    ulong room = BatchBytes - batchBytes;
                    ulong length = Math.Min(room, (run.End - start).Value);
                    batch.Add(new AddressRange(start, start + new ByteCount(length)));
                    batchBytes += length;
                    start += new ByteCount(length);
                    if (batchBytes == BatchBytes || batch.Count == MaxIovecs)
                    {
                        Flush(vma, batch, batchBytes);
                        batch.Clear();
                        batchBytes = 0;
                    }
                }
            }
            if (batch.Count > 0)
            {
                Flush(vma, batch, batchBytes);
            }
        }

        private void Flush(SavedVma vma, List<AddressRange> batch, ulong bytes)
        {
            Read(vma, batch, buffer.AsSpan(0, (int)bytes));
            var flags = PagemapFlags.Present | (vma.CanBeLazy ? PagemapFlags.Lazy : 0);
            int offset = 0;
            foreach (var run in batch)
            {
                Emit(run, buffer.AsSpan(offset, (int)run.Length.Value), flags, vma.ZeroPagesMayBeSkipped);
                offset += (int)run.Length.Value;
            }
            done += bytes >> Page.Shift;
            session.Log.Progress("Saving memory", (long)done, (long)total);
            if (!failurePointPassed)
            {
                failurePointPassed = true;
                FailurePoint.Check(session.Options.FailAt, FailurePoint.MidMemory);
            }
        }

        private unsafe void Read(SavedVma vma, List<AddressRange> batch, Span<byte> destination)
        {
            if (vma.Info.Readable)
            {
                var remote = ArrayPool<IoVec>.Shared.Rent(batch.Count);
                try
                {
                    for (int i = 0; i < batch.Count; i++)
                    {
                        remote[i] = new IoVec { Base = batch[i].Start.Value, Length = batch[i].Length.Value };
                    }
                    fixed (byte* p = destination)
                    {
                        var local = new IoVec { Base = (ulong)p, Length = (ulong)destination.Length };
                        long n = ProcessVm.Readv(process.Pid, new ReadOnlySpan<IoVec>(in local), remote.AsSpan(0, batch.Count));
                        if (n == destination.Length)
                        {
                            return;
                        }
                    }
                }
                finally
                {
                    ArrayPool<IoVec>.Shared.Return(remote);
                }
            }
            // Unreadable areas (PROT_NONE, exec-only) or a short read: /proc/PID/mem forces access.
            int offset = 0;
            foreach (var run in batch)
            {
                process.Memory.Read(run.Start, destination.Slice(offset, (int)run.Length.Value));
                offset += (int)run.Length.Value;
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
                var slice = data.Slice(first << Page.Shift, (i - first) << Page.Shift);
                file.Write(slice);
                var count = new PageCount((ulong)(i - first));
                pagemap.Add(run.Start + new ByteCount((ulong)first << Page.Shift), count, flags);
                Written += count;
            }
        }

        private static bool IsZero(ReadOnlySpan<byte> data, int page) =>
            data.Slice(page << Page.Shift, Page.Size).IndexOfAnyExcept((byte)0) < 0;
    }
}
