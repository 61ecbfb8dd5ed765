using System.Buffers;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Resources.Process;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// Page contents (pagemap-PID.img + pages-N.img). Dump: find the pages worth saving, copy them out of the process in
/// large batches (process_vm_readv, or /proc/PID/mem for unreadable areas) and append them to the pages file (streamed:
/// the output may be a page server), leaving out all-zero anonymous pages (they come back as fresh zero pages). An
/// incremental dump (a parent image) copies only
/// the pages written since the parent, as its write tracking says, and refers to the parent for the rest.
/// </summary>
internal static partial class Pages
{
    private const int BatchBytes = 8 << 20;
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
        foreach (var area in areas.Where(a => a.Policy != PagePolicy.None))
        {
            // Written first: with rearm that scan protects the pages again, and the process is frozen in between.
            var written = tracking is not null && area.Policy == PagePolicy.Private ? scanner.ScanWritten(area.Info.Range, rearm) : null;
            var saved = scanner.Scan(area.Info.Range, area.Policy);
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
        log.Detail($"pages of {process.Pid}: {plan.CopyPages.Value} to copy, {plan.ParentPages.Value} in the parent image (found with {(useIoctl ? "PAGEMAP_SCAN" : "/proc/PID/pagemap")})");
        return plan;
    }

    /// <summary>
    /// Copies the planned pages into a new pages file and fills the process's pagemap. <paramref name="whileRunning"/>:
    /// the process runs again (a pre-dump), so a run it unmapped meanwhile is left out rather than failing the dump;
    /// the area it was in is no longer tracked, so the next dump copies whatever is there then.
    /// </summary>
    public static void Copy(DumpedProcess process, DumpSession session, PagePlan plan, bool whileRunning)
    {
        uint pagesId = session.NextPagesId++;
        process.PagemapHead.PagesId = pagesId;
        using var stream = session.Output.Create($"pages-{pagesId}.img");
        var pagemap = new PagemapBuilder(process.Pagemap);
        var copier = new PageCopier(process, stream, pagemap, session, plan.CopyPages.Value, whileRunning);
        foreach (var (area, runs) in plan.Copies)
        {
            copier.Copy(area, runs);
        }
        foreach (var run in plan.InParent)
        {
            pagemap.AddInParent(run);
        }
        pagemap.Finish();
        session.Stats.PagesScanned += plan.CopyPages.Value + plan.ParentPages.Value;
        session.Stats.PagesWritten += pagemap.Pages.Value;
        session.Stats.PagesSkippedParent += pagemap.ParentPages.Value;
        session.Log.Detail($"pages of {process.Pid}: {pagemap.Pages.Value} written, {copier.ZeroSkipped.Value} zero pages left out, {pagemap.ParentPages.Value} in the parent image{(copier.Vanished.Value > 0 ? $", {copier.Vanished.Value} unmapped while copied" : "")}");
    }

    /// <summary>Copies runs of pages from the process into the pages file, batch by batch.</summary>
    private sealed class PageCopier
    {
        private readonly DumpedProcess process;
        private readonly Stream file;
        private readonly PagemapBuilder pagemap;
        private readonly DumpSession session;
        private readonly ulong total;
        private readonly bool whileRunning;
        private readonly byte[] buffer = GC.AllocateUninitializedArray<byte>(BatchBytes, pinned: true);
        private ulong done;
        private bool failurePointPassed;

        public PageCopier(DumpedProcess process, Stream file, PagemapBuilder pagemap, DumpSession session, ulong total, bool whileRunning)
        {
            this.process = process;
            this.file = file;
            this.pagemap = pagemap;
            this.session = session;
            this.total = total;
            this.whileRunning = whileRunning;
        }

        public PageCount ZeroSkipped { get; private set; }

        /// <summary>Pages of runs the running process unmapped before they could be read.</summary>
        public PageCount Vanished { get; private set; }

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
            var read = Read(vma, batch, buffer.AsSpan(0, (int)bytes));
            var flags = PagemapFlags.Present | (vma.CanBeLazy ? PagemapFlags.Lazy : 0);
            int offset = 0;
            for (int i = 0; i < batch.Count; i++)
            {
                var run = batch[i];
                if (read[i])
                {
                    Emit(run, buffer.AsSpan(offset, (int)run.Length.Value), flags, vma.ZeroPagesMayBeSkipped);
                }
                else
                {
                    Vanished += run.Pages;
                }
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

        // Reads the batch into `destination`; says which runs could be read (all of them, unless the process runs).
        private unsafe bool[] Read(SavedVma vma, List<AddressRange> batch, Span<byte> destination)
        {
            var read = new bool[batch.Count];
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
                            Array.Fill(read, true);
                            return read;
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
            for (int i = 0; i < batch.Count; i++)
            {
                var run = batch[i];
                try
                {
                    process.Memory.Read(run.Start, destination.Slice(offset, (int)run.Length.Value));
                    read[i] = true;
                }
                catch (NativeException e) when (whileRunning && e.Errno is Errno.EIO or Errno.EFAULT && ProcessTree.IsAlive(process.Pid))
                {
                    session.Log.Write($"pages {run} of {process.Pid} were unmapped before they were read: {e.Message}");
                }
                offset += (int)run.Length.Value;
            }
            return read;
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
                pagemap.Add(run.Start + new ByteCount((ulong)first << Page.Shift), new PageCount((ulong)(i - first)), flags);
            }
        }

        private static bool IsZero(ReadOnlySpan<byte> data, int page) =>
            data.Slice(page << Page.Shift, Page.Size).IndexOfAnyExcept((byte)0) < 0;
    }
}
