using System.Diagnostics;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// Restore of page contents: the process itself reads its pages from the pages files (of this image and of its
/// parents) with injected preadv, up to 1024 runs of one file per call, straight into the areas just mapped. The
/// pages of long runs are populated first with MADV_POPULATE_WRITE: one call that allocates a whole run is many times
/// faster than taking a page fault per page inside preadv (a page fault is dear on virtual machines: 0.2 s against
/// 4 s per GiB on ours). But each call costs about 2 µs of its own, more than the faults of a run of a few pages:
/// those are left to preadv (see <see cref="MinPopulatedPages"/>).
/// <para>
/// On this VM the copy still runs far below memcpy speed, and not for anything done here: the first access to each
/// 4 KiB page through the process's own mapping is slow below the guest kernel (preadv takes no page fault after the
/// populate, and its time is spent inside the copy instruction). A C program measured 2.1 to 2.6 CPU-s per GiB for
/// preadv from tmpfs into populated 4 KiB pages, 0.21 CPU-s into populated huge pages, and the same 2.1 to 2.2 CPU-s
/// for a plain read of memory that process_vm_writev had filled: filling the pages from the engine would only move that
/// cost into the restored process's first run. An area restored in huge pages is one that had MADV_HUGEPAGE.
/// </para>
/// </summary>
internal static partial class Pages
{
    /// <summary>
    /// Fills the process's memory with <paramref name="runs"/> of its chain of pages files (in address order),
    /// counting progress against <paramref name="totalBytes"/>, the size of what this part of its restore covers.
    /// </summary>
    public static void Restore(RestoreSession session, RestoringProcess process, IReadOnlyList<PageRun> runs, long totalBytes)
    {
        var log = session.Log;
        var caller = process.Caller;
        var scratch = process.Injection.Scratch;
        // Where the time goes, for the log: the kernel's allocation of the pages (populate), their copy from the pages
        // files (preadv), the digests checked on the way, and the rest (descriptors moved in and out, injected calls).
        long started = Stopwatch.GetTimestamp();
        Populate(process, runs, log);
        var allocation = Stopwatch.GetElapsedTime(started);
        var copy = TimeSpan.Zero;
        var verification = TimeSpan.Zero;
        // One descriptor per pages file of the chain, opened by the engine when its first run comes and pulled into the
        // process: a process already inside a mount namespace of its own (a container's) does not see the images.
        var descriptors = new Dictionary<PagemapLevel, int>();
        int enginePidfd = -1;
        var iovecs = new List<IoVec>(MaxIovecs);
        PagemapLevel? batchFile = null;
        long batchOffset = 0;
        long batchBytes = 0;
        long done = 0;

        void Flush()
        {
            if (iovecs.Count == 0)
            {
                return;
            }
            scratch.Reset();
            var array = scratch.PutArray<IoVec>(iovecs.ToArray());
            long reading = Stopwatch.GetTimestamp();
            long n = caller.Checked("preadv of pages", RemoteCall.Preadv(descriptors[batchFile!], array, iovecs.Count, batchOffset));
            copy += Stopwatch.GetElapsedTime(reading);
            if (n != batchBytes)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"{batchFile!.PagesPath}: read {n} of {batchBytes} bytes at offset {batchOffset}.", batchFile.PagesPath);
            }
            bool first = done == 0;
            done += batchBytes;
            log.Progress("Restoring memory", done, totalBytes);
            if (first)
            {
                FailurePoint.Check(session.Options.FailAt, FailurePoint.MidMemory);
            }
            iovecs.Clear();
            batchBytes = 0;
        }

        // preadv moves at most 2 GiB minus a page per call.
        const long MaxBytesPerCall = 0x7ffff000;
        foreach (var run in runs)
        {
            // A lazy restore verifies pages as they are read: these the process reads itself, now.
            long verifying = Stopwatch.GetTimestamp();
            run.Source.Verify(run.FileOffset, (long)run.Range.Length.Value);
            verification += Stopwatch.GetElapsedTime(verifying);
            if (!descriptors.ContainsKey(run.Source))
            {
                using var ours = FileDescriptor.Open(run.PagesPath, O.RDONLY | O.CLOEXEC);
                if (enginePidfd < 0)
                {
                    enginePidfd = caller.Checked("pidfd_open of the engine", session.EnginePidfdCall);
                }
                descriptors[run.Source] = caller.Checked($"pidfd_getfd of {run.PagesPath}", RemoteCall.PidfdGetfd(enginePidfd, ours.Value));
            }
            for (ulong start = run.Range.Start.Value; start < run.Range.End.Value;)
            {
                long length = (long)Math.Min(run.Range.End.Value - start, 1UL << 30);
                long offset = run.FileOffset + (long)(start - run.Range.Start.Value);
                if (iovecs.Count == MaxIovecs || (iovecs.Count > 0 && (batchFile != run.Source || batchOffset + batchBytes != offset || batchBytes + length > MaxBytesPerCall)))
                {
                    Flush();
                }
                if (iovecs.Count == 0)
                {
                    batchFile = run.Source;
                    batchOffset = offset;
                }
                iovecs.Add(new IoVec { Base = start, Length = (ulong)length });
                batchBytes += length;
                start += (ulong)length;
            }
        }
        Flush();
        // Runs left to other means (the vDSO family is moved into place, lazy pages arrive later) complete the count too.
        if (done != totalBytes)
        {
            log.Progress("Restoring memory", totalBytes, totalBytes);
        }
        foreach (var fd in descriptors.Values.Append(enginePidfd).Where(fd => fd >= 0))
        {
            caller.Checked("close", RemoteCall.Close(fd));
        }
        var all = Stopwatch.GetElapsedTime(started);
        var rest = all - allocation - copy - verification;
        double gbPerSecond = copy > TimeSpan.Zero ? done / copy.TotalSeconds / 1e9 : 0;
        log.Detail($"pages of {process.Pid}: {done >> 20} MiB in {all.TotalMilliseconds:F1} ms: allocation (MADV_POPULATE_WRITE) {allocation.TotalMilliseconds:F1} ms, copy (preadv) {copy.TotalMilliseconds:F1} ms ({gbPerSecond:F2} GB/s), digests checked {verification.TotalMilliseconds:F1} ms, the rest (descriptors, injected calls) {rest.TotalMilliseconds:F1} ms");
    }

    /// <summary>
    /// The shortest run (adjacent runs merged) whose pages are allocated ahead. A C program filling 5,000 areas
    /// separated by guard pages from tmpfs on the VM of these notes (populate and preadv, against preadv alone):
    /// areas of 1 page 18.2 ms against 13.3, of 4 pages 46.7 against 42 to 45, of 16 pages 126 against 151 to 155.
    /// </summary>
    private static readonly PageCount MinPopulatedPages = new(8);

    // Allocates the pages of the long runs (adjacent runs merged) in one batch of madvise calls; shorter ones are
    // allocated as preadv faults them in. Kernels before 5.14 do not know MADV_POPULATE_WRITE (EINVAL): all pages
    // are then allocated so.
    private static void Populate(RestoringProcess process, IReadOnlyList<PageRun> runs, Logging.EngineLog log)
    {
        var batch = new SyscallBatch(process.Injection);
        foreach (var range in Merged(runs.Select(r => r.Range)).Where(r => r.Length >= MinPopulatedPages.Bytes))
        {
            batch.Add("madvise(MADV_POPULATE_WRITE)", range, RemoteCall.Madvise(range, Mman.MADV_POPULATE_WRITE));
        }
        try
        {
            batch.Run();
        }
        catch (NativeException e) when (e.Errno == Errno.EINVAL)
        {
            log.Detail($"pages of {process.Pid} not populated ahead: {e.Message}");
        }
    }

    private static IEnumerable<AddressRange> Merged(IEnumerable<AddressRange> ranges)
    {
        AddressRange? pending = null;
        foreach (var range in ranges.OrderBy(r => r.Start))
        {
            if (pending is { } open && open.End == range.Start)
            {
                pending = new AddressRange(open.Start, range.End);
                continue;
            }
            if (pending is not null)
            {
                yield return pending.Value;
            }
            pending = range;
        }
        if (pending is not null)
        {
            yield return pending.Value;
        }
    }
}
