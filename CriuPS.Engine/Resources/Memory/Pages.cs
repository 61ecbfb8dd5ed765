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
    private const int BatchBytes = PageSink.BatchBytes;
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
        using var sink = new PageSink(stream, new PagemapBuilder(process.Pagemap));
        var copier = new PageCopier(process, sink, session, toCopy);
        foreach (var (vma, runs) in work)
        {
            copier.Copy(vma, runs);
        }
        copier.Finish();
        sink.Complete();
        session.Stats.PagesScanned += toCopy;
        session.Stats.PagesWritten += sink.Written.Value;
        log.Detail($"pages of {process.Pid}: {sink.Written.Value} written, {sink.ZeroSkipped.Value} zero pages left out");
    }

    /// <summary>
    /// Reads runs of pages out of the process in batches of up to <see cref="BatchBytes"/> and <see cref="MaxIovecs"/>
    /// runs, across areas (a process of thousands of small areas still makes few large reads), for the sink to write
    /// while the next batch is read.
    /// </summary>
    private sealed class PageCopier
    {
        private readonly DumpedProcess process;
        private readonly PageSink sink;
        private readonly DumpSession session;
        private readonly ulong total;
        private List<PageSink.Run> batch = new();
        private readonly List<bool> readable = new();
        private int batchBytes;
        private ulong done;
        private bool failurePointPassed;

        public PageCopier(DumpedProcess process, PageSink sink, DumpSession session, ulong total)
        {
            this.process = process;
            this.sink = sink;
            this.session = session;
            this.total = total;
        }

        public void Copy(SavedVma vma, List<AddressRange> runs)
        {
            var flags = PagemapFlags.Present | (vma.CanBeLazy ? PagemapFlags.Lazy : 0);
            foreach (var run in runs)
            {
                // Split runs so that a batch never exceeds the buffer.
                for (var start = run.Start; start < run.End;)
                {
                    int length = (int)Math.Min((ulong)(BatchBytes - batchBytes), (run.End - start).Value);
                    batch.Add(new PageSink.Run(new AddressRange(start, start + new ByteCount((ulong)length)), batchBytes, flags, vma.ZeroPagesMayBeSkipped));
                    readable.Add(vma.Info.Readable);
                    batchBytes += length;
                    start += new ByteCount((ulong)length);
                    if (batchBytes == BatchBytes || batch.Count == MaxIovecs)
                    {
                        Flush();
                    }
                }
            }
        }

        /// <summary>Hands over the last, partial batch.</summary>
        public void Finish()
        {
            if (batch.Count > 0)
            {
                Flush();
            }
        }

        private void Flush()
        {
            var buffer = sink.Rent();
            Read(buffer);
            sink.Submit(buffer, batch);
            done += (ulong)batchBytes >> Page.Shift;
            batch = new List<PageSink.Run>();
            readable.Clear();
            batchBytes = 0;
            session.Log.Progress("Saving memory", (long)done, (long)total);
            if (!failurePointPassed)
            {
                failurePointPassed = true;
                FailurePoint.Check(session.Options.FailAt, FailurePoint.MidMemory);
            }
        }

        // One process_vm_readv for the readable runs; unreadable areas (PROT_NONE, exec-only), or all of them after
        // a short read, through /proc/PID/mem, which forces access.
        private unsafe void Read(byte[] buffer)
        {
            var remote = ArrayPool<IoVec>.Shared.Rent(batch.Count);
            var local = ArrayPool<IoVec>.Shared.Rent(batch.Count);
            try
            {
                fixed (byte* p = buffer)
                {
                    int count = 0;
                    ulong wanted = 0;
                    for (int i = 0; i < batch.Count; i++)
                    {
                        if (readable[i])
                        {
                            remote[count] = new IoVec { Base = batch[i].Range.Start.Value, Length = batch[i].Range.Length.Value };
                            local[count++] = new IoVec { Base = (ulong)(p + batch[i].Offset), Length = batch[i].Range.Length.Value };
                            wanted += batch[i].Range.Length.Value;
                        }
                    }
                    bool allRead = count > 0 && ProcessVm.Readv(process.Pid, local.AsSpan(0, count), remote.AsSpan(0, count)) == (long)wanted;
                    for (int i = 0; i < batch.Count; i++)
                    {
                        if (!readable[i] || !allRead)
                        {
                            process.Memory.Read(batch[i].Range.Start, buffer.AsSpan(batch[i].Offset, (int)batch[i].Range.Length.Value));
                        }
                    }
                }
            }
            finally
            {
                ArrayPool<IoVec>.Shared.Return(remote);
                ArrayPool<IoVec>.Shared.Return(local);
            }
        }
    }
}
