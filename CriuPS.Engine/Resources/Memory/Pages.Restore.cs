using CriuPS.Engine.Errors;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// Restore of page contents: the process itself reads its pages from the pages files (of this image and of its
/// parents) with injected preadv, up to 1024 runs of one file per call, straight into the areas just mapped.
/// </summary>
internal static partial class Pages
{
    public static void Restore(RestoringProcess process, PageChain pages, IReadOnlyList<AddressRange> skip, Logging.EngineLog log)
    {
        var caller = process.Caller;
        var scratch = process.Injection.Scratch;
        // One descriptor per pages file of the chain, opened in the process when its first run comes.
        var descriptors = new Dictionary<PagemapLevel, long>();
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
            long n = caller.Checked("preadv of pages", SyscallNumber.Preadv, (ulong)descriptors[batchFile!], array.Value, (ulong)iovecs.Count, (ulong)batchOffset, 0);
            if (n != batchBytes)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"{batchFile!.PagesPath}: read {n} of {batchBytes} bytes at offset {batchOffset}.", batchFile.PagesPath);
            }
            done += batchBytes;
            log.Progress("Restoring memory", done, pages.TotalBytes);
            iovecs.Clear();
            batchBytes = 0;
        }

        // preadv moves at most 2 GiB minus a page per call.
        const long MaxBytesPerCall = 0x7ffff000;
        foreach (var run in pages.Runs)
        {
            if (skip.Any(s => s.Overlaps(run.Range)))
            {
                continue;
            }
            if (!descriptors.ContainsKey(run.Source))
            {
                scratch.Reset();
                descriptors[run.Source] = caller.Checked($"open of {run.PagesPath}", SyscallNumber.Openat, unchecked((ulong)-100), scratch.PutString(run.PagesPath).Value, (ulong)(O.RDONLY | O.CLOEXEC));
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
        // Runs left to other means (the vDSO family is moved into place, not read) complete the count too.
        if (done != pages.TotalBytes)
        {
            log.Progress("Restoring memory", pages.TotalBytes, pages.TotalBytes);
        }
        foreach (var fd in descriptors.Values)
        {
            caller.Checked("close", SyscallNumber.Close, (ulong)fd);
        }
    }
}
