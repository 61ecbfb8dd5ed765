using System.Buffers;
using System.Diagnostics;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Resources.Process;
using CriuPS.Native.Diagnostics;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// Page contents (pagemap-PID.img + pages-N.img). Dump: find the pages worth saving, copy them out of the
/// process in large batches (process_vm_readv, or /proc/PID/mem for unreadable areas) and append them
/// to the pages file (streamed: the output may be a page server), leaving out all-zero anonymous pages (they come back as fresh zero pages).
/// An incremental dump (a parent image) copies only the pages written since the parent, as its write tracking says,
/// and refers to the parent for the rest.
/// </summary>
internal static partial class Pages
{
    private const int BatchBytes = PageSink.BatchBytes;
    private const int MaxIovecs = 1024;

    /// <summary>Finds the pages of a frozen process to save: what to copy, and what the parent image holds.</summary>
    public static PagePlan Plan(DumpedProcess process, DumpSession session, IReadOnlyList<SavedVma> areas, ParentImage? parent, bool rearm)
    {
        var log = session.Log;
        bool useIoctl = !session.Options.ForcePagemapFile && PagemapScan.IsSupported();
        using var scanner = new PageScanner(process.Pid, useIoctl);
        TrackedProcess? tracking = null;
        IReadOnlyList<AddressRange> held = [];
        if (parent is not null)
        {
            string why = $"process {process.Pid} is not in '{parent.Directory}' (it is new to the tree)";
            tracking = parent.HasProcess(process.Pid) ? WriteTracking.Find(process.Pid, parent.Directory, parent.RunId, out why) : null;
            if (tracking is null)
            {
                log.Warning($"{why}: all its pages are saved in '{session.Output.Location}'.");
            }
            else
            {
                held = parent.Holds(process.Pid);
            }
        }
        if (tracking is null)
        {
            // Protection left on pages not there yet reads as swapped pages: end stale tracking before looking.
            WriteTracking.End(process.Pid);
        }

        var plan = new PagePlan(tracking);
        var scanned = areas.Where(a => a.Policy != PagePolicy.None).ToList();
        // Without tracking, every area is scanned up front in as few calls as can be. With it, each area is asked
        // what was written first: with rearm that scan protects the pages again, and the process is frozen in between.
        var found = tracking is null ? scanner.Scan(scanned.Select(a => (a.Info.Range, a.Policy, a.HoldsOnlyAnonymousPages)).ToList()) : null;
        for (int i = 0; i < scanned.Count; i++)
        {
            var area = scanned[i];
            var written = tracking is not null && area.Policy == PagePolicy.Private ? scanner.ScanWritten(area.Info.Range, rearm) : null;
            var saved = found?[i] ?? scanner.Scan(area.Info.Range, area.Policy);
            if (written is null)
            {
                if (tracking is not null && area.Policy == PagePolicy.Private)
                {
                    plan.Untracked.Add(area);
                }
                plan.Copy(area, saved);
                continue;
            }
            var (copy, inParent) = PageDelta.Split(saved, written, held);
            plan.Tracked.Add(area);
            plan.Copy(area, copy);
            plan.LeaveToParent(inParent);
        }
        if (plan.Untracked.Count > 0)
        {
            var bytes = new ByteCount((ulong)plan.Untracked.Sum(a => (long)a.Info.Range.Length.Value));
            log.Warning($"{plan.Untracked.Count} memory area(s) of process {process.Pid} ({bytes.Value >> 10} KiB) were not tracked since '{parent!.Directory}' (mapped, moved or replaced since): their pages are saved in full.");
        }
        plan.Unprotected = scanner.Unprotected;
        log.Detail($"pages of {process.Pid}: {plan.CopyPages.Value} to copy, {plan.ParentPages.Value} in the parent image (found with {(useIoctl ? "PAGEMAP_SCAN" : "/proc/PID/pagemap")})");
        return plan;
    }

    /// <summary>
    /// Copies the planned pages into a new pages file and fills the process's pagemap. <paramref name="whileRunning"/>:
    /// the process runs again (a pre-dump), so a run it unmapped meanwhile is left out rather than failing the dump;
    /// the area it was in is no longer tracked, so the next dump copies whatever is there then. With
    /// <paramref name="snapshot"/> the process runs again too, but its pages are protected until copied: each batch
    /// read is settled by the snapshot (pages it saved first replace what was read) and then released.
    /// </summary>
    public static void Copy(DumpedProcess process, DumpSession session, PagePlan plan, bool whileRunning, BackgroundSnapshot? snapshot = null)
    {
        var clock = Stopwatch.StartNew();
        uint pagesId = session.NextPagesId++;
        process.PagemapHead.PagesId = pagesId;
        using var stream = session.Output.Create($"pages-{pagesId}.img");
        var pagemap = new PagemapBuilder(process.Pagemap);
        using var sink = new PageSink(stream, pagemap, concurrent: plan.CopyPages.Value > (ulong)(BatchBytes >> Page.Shift));
        var copier = new PageCopier(process, sink, session, plan.CopyPages.Value, whileRunning, snapshot);
        foreach (var (area, runs) in plan.Copies)
        {
            copier.Copy(area, runs);
        }
        copier.Finish();
        sink.Complete();
        foreach (var run in plan.InParent)
        {
            pagemap.AddInParent(run);
        }
        pagemap.Finish();
        session.Stats.PagesScanned += plan.CopyPages.Value + plan.ParentPages.Value;
        session.Stats.PagesWritten += sink.Written.Value;
        session.Stats.PagesSkippedParent += pagemap.ParentPages.Value;
        session.Log.Detail($"pages of {process.Pid}: {sink.Written.Value} written, {sink.ZeroSkipped.Value} zero pages left out, {pagemap.ParentPages.Value} in the parent image{(copier.Vanished.Value > 0 ? $", {copier.Vanished.Value} unmapped while copied" : "")}; of the copy's {clock.Elapsed.TotalMilliseconds:F1} ms the page writer worked {sink.BusyTime.TotalMilliseconds:F1} ms, the reader read {copier.ReadTime.TotalMilliseconds:F1} ms and waited {copier.WaitTime.TotalMilliseconds:F1} ms for a buffer");
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
        private readonly bool whileRunning;
        private readonly BackgroundSnapshot? snapshot;
        private List<PageSink.Run> batch = new();
        private readonly List<bool> readable = new();
        private int batchBytes;
        private ulong done;
        private bool failurePointPassed;

        public PageCopier(DumpedProcess process, PageSink sink, DumpSession session, ulong total, bool whileRunning, BackgroundSnapshot? snapshot)
        {
            this.snapshot = snapshot;
            this.process = process;
            this.sink = sink;
            this.session = session;
            this.total = total;
            this.whileRunning = whileRunning;
        }

        /// <summary>How long the reading thread read the process's memory (process_vm_readv, /proc/PID/mem).</summary>
        public TimeSpan ReadTime { get; private set; }

        /// <summary>How long it waited for a free buffer: the writing side being the slower.</summary>
        public TimeSpan WaitTime { get; private set; }

        /// <summary>Pages of runs the running process unmapped before they could be read.</summary>
        public PageCount Vanished { get; private set; }

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
            long waiting = Stopwatch.GetTimestamp();
            var buffer = sink.Rent();
            long reading = Stopwatch.GetTimestamp();
            var read = Read(buffer);
            snapshot?.Settle(read, buffer);
            WaitTime += Stopwatch.GetElapsedTime(waiting, reading);
            ReadTime += Stopwatch.GetElapsedTime(reading);
            sink.Submit(buffer, read);
            snapshot?.Release(read);
            DeathPoint.Reach(DeathPoint.Copy);
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
        // a short read, through /proc/PID/mem, which forces access. Returns the runs read: all of them, unless the
        // process runs and unmapped some meanwhile.
        private List<PageSink.Run> Read(byte[] buffer)
        {
            var read = new List<PageSink.Run>(batch.Count);
            var remote = ArrayPool<IoVec>.Shared.Rent(batch.Count);
            var local = ArrayPool<IoVec>.Shared.Rent(batch.Count);
            try
            {
                int count = 0;
                ulong wanted = 0;
                for (int i = 0; i < batch.Count; i++)
                {
                    if (readable[i])
                    {
                        remote[count] = new IoVec { Base = batch[i].Range.Start.Value, Length = batch[i].Range.Length.Value };
                        local[count++] = new IoVec { Base = (ulong)batch[i].Offset, Length = batch[i].Range.Length.Value };
                        wanted += batch[i].Range.Length.Value;
                    }
                }
                bool allRead = count > 0 && ProcessVm.ReadvInto(process.Pid, buffer, local.AsSpan(0, count), remote.AsSpan(0, count)) == (long)wanted;
                for (int i = 0; i < batch.Count; i++)
                {
                    if ((readable[i] && allRead) || ReadForced(batch[i], buffer))
                    {
                        read.Add(batch[i]);
                    }
                }
            }
            finally
            {
                ArrayPool<IoVec>.Shared.Return(remote);
                ArrayPool<IoVec>.Shared.Return(local);
            }
            return read;
        }

        // Reads a run through /proc/PID/mem; false for a run that a running process unmapped before it was read.
        private bool ReadForced(PageSink.Run run, byte[] buffer)
        {
            try
            {
                process.Memory.Read(run.Range.Start, buffer.AsSpan(run.Offset, (int)run.Range.Length.Value));
                return true;
            }
            catch (NativeException e) when (whileRunning && e.Errno is Errno.EIO or Errno.EFAULT && ProcessTree.IsAlive(process.Pid))
            {
                session.Log.Write($"pages {run.Range} of {process.Pid} were unmapped before they were read: {e.Message}");
                Vanished += run.Range.Pages;
                return false;
            }
        }
    }
}
