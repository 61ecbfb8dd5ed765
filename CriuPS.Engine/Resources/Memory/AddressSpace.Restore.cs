using System.Diagnostics;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Lazy;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Resources.Ipc;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// Restore of the address space: empty the host's copy, put this kernel's vDSO in place (or a proxy of it), map every saved area at its
/// address, fill in the saved pages, then give each area its final protection and advice. In a tree, private anonymous
/// memory is in place already (<see cref="ForkedMemory"/>): it is kept, neither mapped nor filled again.
/// </summary>
internal static partial class AddressSpace
{

    public static void Restore(RestoreSession session, RestoringProcess process)
    {
        var log = session.Log;
        long started = Stopwatch.GetTimestamp();
        // The host's vDSO family, found by name: maps, not smaps (which walks every page, for flags not needed here).
        var vdsoFamily = Vdso.RuntimeAreas(SmapsParser.ReadMaps(process.HostPid));

        // What was restored before the process forked its children (which share it) stays as it is.
        var beforeFork = ForkedMemory.AreasOf(session, process.Pid);
        var beforeForkRanges = beforeFork.Select(Range).OrderBy(r => r.Start).ToList();
        var keep = vdsoFamily.Select(v => v.Range).Append(process.Injection.Scratch.Range).Concat(beforeForkRanges).OrderBy(r => r.Start).ToList();
        UnmapAllBut(process.Injection, keep);

        var pages = OpenedPages.Of(session, process.Images);
        var vdso = Vdso.Place(session, process, pages, vdsoFamily);

        var areas = process.Images.Mm.Vmas.Where(vdso.MapsFromImage).ToList();
        var filled = AreasWithPages(areas, pages.Runs);
        // A filter by the few areas restored before the fork (Except puts every area in its set, 10,000 of them).
        var inherited = beforeFork.ToHashSet<VmaEntry>(ReferenceEqualityComparer.Instance);
        MapAreas(session, process, areas.Where(area => !inherited.Contains(area)).ToList(), filled);
        log.Detail($"memory of {process.Pid}: {areas.Count} areas mapped ({Stopwatch.GetElapsedTime(started).TotalMilliseconds:F1} ms with the host's unmapped)");

        var lazy = session.Lazy is null ? null : LazyMemory.Plan(pages, areas);
        var runs = pages.Runs.Where(run => !vdso.Skips(run) && lazy?.Runs.Contains(run) != true).ToList();
        if (runs.Any(run => run.IsLeftBehind))
        {
            var behind = runs.First(run => run.IsLeftBehind).Range;
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                $"{pages.Runs[0].Source.PagemapPath}: the pages of process {process.Pid} at {behind} are in no pages file: a post-copy dump left them in the source process, and only its page server has them.",
                process.Pid, "Restore it lazily from the page server of the held process (Restore-Process -LazyPages -PageServer), as Move-Process -PostCopy does.");
        }
        Pages.Restore(session, process, beforeForkRanges.Count == 0 ? runs : InheritedPages.Outside(runs, beforeForkRanges), pages.TotalBytes);
        vdso.ApplyProxy(process);
        log.Detail($"memory of {process.Pid}: {(pages.TotalBytes >> Page.Shift) - (long)(lazy?.Missing.Count.Value ?? 0)} pages filled");

        long finishing = Stopwatch.GetTimestamp();
        var final = new SyscallBatch(process.Injection, capacity: filled.Count);
        bool mergeAny = process.Images.Mm.CriupsMergeAny;
        if (mergeAny)
        {
            // Every area mapped from now on is mergeable, and every one mapped so far becomes so.
            final.Add("prctl(PR_SET_MEMORY_MERGE)", RemoteCall.MergeAllMemory());
        }
        foreach (var area in areas)
        {
            if (filled.Contains(area) && (area.Prot & Mman.PROT_WRITE) == 0)
            {
                final.Add("mprotect", Range(area), RemoteCall.Mprotect(Range(area), area.Prot));
            }
            Advise(final, area, mergeAny);
        }
        final.Run();
        log.Detail($"memory of {process.Pid}: protections and advice set in {Stopwatch.GetElapsedTime(finishing).TotalMilliseconds:F1} ms");

        if (lazy is not null && !lazy.Missing.IsEmpty)
        {
            // From here on, touching a lazy page waits for the transfer, which serves faults at once.
            var registered = new PageRanges();
            foreach (var area in lazy.Areas)
            {
                registered.Add(area, area.Start);
            }
            var uffd = UffdRegistration.Register(process, lazy.Areas);
            session.Lazy!.Add(new LazyAddressSpace(uffd, process.Pid, process.Pid, lazy.Missing, registered));
            log.Detail($"memory of {process.Pid}: {lazy.Missing.Count.Value} pages left to arrive lazily, in {lazy.Areas.Count} areas");
        }
        Seal(process, areas);
    }

    // Last: a sealed area can no longer be unmapped, moved, protected otherwise or advised to drop its pages.
    private static void Seal(RestoringProcess process, List<VmaEntry> areas)
    {
        var sealing = new SyscallBatch(process.Injection);
        foreach (var area in areas.Where(a => a.CriupsSealed))
        {
            sealing.Add("mseal", Range(area), RemoteCall.Mseal(Range(area)));
        }
        sealing.Run();
    }

    // The areas that have saved pages: one pass over both lists, both in address order already (the image checks
    // refuse an mm image whose areas are not, PageChain resolves its runs in that order). Not sorted again: in a
    // restore in the session, where the runtime compiles the sorts of these types at its first tier, the two sorts of
    // 10,000 areas and 5,000 runs took 7.3 ms. The set compares the entries themselves: protobuf's hash of an area
    // XORs its fields, and single-page areas at even page numbers all hash alike (start ^ end is 4096 for each),
    // which made 5,000 of them take a quarter of a second.
    private static HashSet<VmaEntry> AreasWithPages(List<VmaEntry> areas, IReadOnlyList<PageRun> runs)
    {
        var filled = new HashSet<VmaEntry>(ReferenceEqualityComparer.Instance);
        int next = 0;
        foreach (var area in areas)
        {
            var range = Range(area);
            while (next < runs.Count && runs[next].Range.End <= range.Start)
            {
                next++;
            }
            if (next < runs.Count && runs[next].Range.Overlaps(range))
            {
                filled.Add(area);
            }
        }
        return filled;
    }

    private static void UnmapAllBut(Injection injection, List<AddressRange> keep)
    {
        var batch = new SyscallBatch(injection);
        ulong from = 0;
        foreach (var range in keep.Append(new AddressRange(Mman.TaskSize, Mman.TaskSize)))
        {
            if (range.Start.Value > from)
            {
                var hosts = new AddressRange(from, range.Start.Value);
                batch.Add($"munmap of the host's {hosts}", RemoteCall.Munmap(hosts));
            }
            from = Math.Max(from, range.End.Value);
        }
        batch.Run();
    }

    private static void MapAreas(RestoreSession session, RestoringProcess process, List<VmaEntry> areas, HashSet<VmaEntry> filled)
    {
        using var files = new MappedFiles(session, process);
        // Files are opened first (that takes calls of its own), then every area is mapped in one batch.
        var fds = areas.Where(IsFileBacked).ToDictionary<VmaEntry, VmaEntry, int>(a => a, files.For, ReferenceEqualityComparer.Instance);
        var batch = new SyscallBatch(process.Injection, capacity: areas.Count);
        foreach (var area in areas)
        {
            if (SysvAttachments.IsAttachment(area))
            {
                SysvAttachments.Attach(batch, area); // its segment exists already, with its contents
                continue;
            }
            ulong prot = area.Prot | (filled.Contains(area) ? Mman.PROT_WRITE : 0);
            ulong flags = (area.Flags & ~(uint)Mman.MAP_LOCKED) | Mman.MAP_FIXED;
            int fd = -1;
            ulong offset = 0;
            if (fds.TryGetValue(area, out int fileFd))
            {
                fd = fileFd;
                offset = area.Pgoff;
                // Shared anonymous memory is mapped from its object, which the process gets as a file.
                flags &= ~Mman.MAP_ANONYMOUS;
            }
            // MAP_FIXED puts the area exactly at its address (over nothing: the host's areas are gone).
            batch.Add("mmap", Range(area), RemoteCall.Mmap(Range(area), prot, flags, fd, offset));
            AdviseHugePages(batch, area);
            if ((area.Flags & Mman.MAP_LOCKED) != 0)
            {
                batch.Add("mlock2", Range(area), RemoteCall.Mlock2(Range(area), onFault: area.CriupsLockOnFault));
            }
        }
        batch.Run();
    }

    // The huge page advice goes in before the pages are allocated (the rest of the advice comes after the fill): an
    // area that had MADV_HUGEPAGE is then populated with huge pages, one allocation per 2 MiB, as the original had
    // them, instead of small pages that khugepaged would collapse later; one with MADV_NOHUGEPAGE gets none where
    // the kernel gives them to every area.
    private static void AdviseHugePages(SyscallBatch batch, VmaEntry area)
    {
        if (!area.HasMadv)
        {
            return;
        }
        foreach (int advice in (ReadOnlySpan<int>)[Mman.MADV_HUGEPAGE, Mman.MADV_NOHUGEPAGE])
        {
            if ((area.Madv & (1UL << advice)) != 0)
            {
                batch.Add($"madvise({advice}) before the pages", Range(area), RemoteCall.Madvise(Range(area), advice));
            }
        }
    }

    private static bool IsFileBacked(VmaEntry area) =>
        ((VmaStatus)area.Status & (VmaStatus.FilePrivate | VmaStatus.FileShared | VmaStatus.AnonShared | VmaStatus.Socket)) != 0;

    // The advice recorded for the area; in a process that merges every area (PR_SET_MEMORY_MERGE), one that was not
    // mergeable had been advised MADV_UNMERGEABLE.
    private static void Advise(SyscallBatch batch, VmaEntry area, bool mergeAny)
    {
        if (mergeAny && (area.Madv & (1UL << Mman.MADV_MERGEABLE)) == 0)
        {
            batch.Add("madvise(MADV_UNMERGEABLE)", Range(area), RemoteCall.Madvise(Range(area), Mman.MADV_UNMERGEABLE));
        }
        if (!area.HasMadv)
        {
            return;
        }
        for (int advice = 0; advice < 64; advice++)
        {
            if ((area.Madv & (1UL << advice)) != 0)
            {
                batch.Add($"madvise({advice})", Range(area), RemoteCall.Madvise(Range(area), advice));
            }
        }
    }

    private static AddressRange Range(VmaEntry area) => new(area.Start, area.End);

    /// <summary>Checks, before anything is started, that every mapped file is still there and unchanged.</summary>
    public static void CheckMappedFiles(RestoreSession session, ProcessImages images)
    {
        // memfds and deleted files come from the image, not from a path.
        var byPath = images.Mm.Vmas
            .Where(v => ((VmaStatus)v.Status & (VmaStatus.FilePrivate | VmaStatus.FileShared)) != 0 && ((VmaStatus)v.Status & VmaStatus.Memfd) == 0)
            .Select(v => (uint)v.Shmid)
            .Distinct()
            .Where(id => GhostFiles.GhostOf(session.Images, id) is null);
        foreach (var id in byPath)
        {
            // A file of a saved mount namespace is checked where the host has it, when it does (not in a tmpfs made again).
            var reg = session.Images.File(id).Reg;
            if (Mounts.NamespaceView.HostPathBefore(session.Images, reg) is { } path)
            {
                RegularFiles.CheckMappedFile(reg, path);
            }
        }
    }
}
