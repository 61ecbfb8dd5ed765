using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Lazy;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// Restore of the address space: empty the host's copy, move the vDSO into place, map every saved area at its
/// address, fill in the saved pages, then give each area its final protection and advice.
/// </summary>
internal static partial class AddressSpace
{
    public static void Restore(RestoreSession session, RestoringProcess process)
    {
        var log = session.Log;
        var caller = process.Caller;
        var runtime = SmapsParser.Read(process.Pid);
        var vdsoFamily = Vdso.RuntimeAreas(runtime);

        var keep = vdsoFamily.Select(v => v.Range).Append(process.Injection.Scratch.Range).OrderBy(r => r.Start).ToList();
        UnmapAllBut(caller, keep);

        using var pages = new PagesFile(session.Images.Directory, process.Images.PagemapHead, process.Images.Pagemap);
        Vdso.Restore(process, pages, vdsoFamily);

        var areas = process.Images.Mm.Vmas.Where(v => !Vdso.IsVdso(v) && !Vdso.IsVvar(v) && ((VmaStatus)v.Status & VmaStatus.Vsyscall) == 0).ToList();
        var filled = areas.Where(a => pages.Runs.Any(r => r.Range.Overlaps(Range(a)))).ToHashSet();
        MapAreas(session, process, areas, filled);
        log.Detail($"memory of {process.Pid}: {areas.Count} areas mapped");

        var vdsoRanges = process.Images.Mm.Vmas.Where(Vdso.IsVdso).Select(Range).ToList();
        var lazy = session.Lazy is null ? null : LazyMemory.Plan(pages, areas);
        Pages.Restore(process, pages, run => vdsoRanges.Any(v => v.Overlaps(run.Range)) || lazy?.Runs.Contains(run) == true, log);
        log.Detail($"memory of {process.Pid}: {(pages.TotalBytes >> Page.Shift) - (long)(lazy?.Missing.Count.Value ?? 0)} pages filled");

        foreach (var area in areas)
        {
            if (filled.Contains(area) && (area.Prot & Mman.PROT_WRITE) == 0)
            {
                caller.Checked($"mprotect of {Range(area)}", SyscallNumber.Mprotect, area.Start, area.End - area.Start, area.Prot);
            }
            Advise(caller, area);
        }

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
    }

    private static void UnmapAllBut(RemoteSyscaller caller, List<AddressRange> keep)
    {
        ulong from = 0;
        foreach (var range in keep.Append(new AddressRange(Mman.TaskSize, Mman.TaskSize)))
        {
            if (range.Start.Value > from)
            {
                caller.Checked($"munmap of the host's {new AddressRange(from, range.Start.Value)}", SyscallNumber.Munmap, from, range.Start.Value - from);
            }
            from = Math.Max(from, range.End.Value);
        }
    }

    private static void MapAreas(RestoreSession session, RestoringProcess process, List<VmaEntry> areas, HashSet<VmaEntry> filled)
    {
        var caller = process.Caller;
        using var files = new MappedFiles(session, process);
        foreach (var area in areas)
        {
            var status = (VmaStatus)area.Status;
            ulong prot = area.Prot | (filled.Contains(area) ? Mman.PROT_WRITE : 0);
            ulong flags = (area.Flags & ~(uint)Mman.MAP_LOCKED) | Mman.MAP_FIXED;
            ulong fd = unchecked((ulong)-1);
            ulong offset = 0;
            if ((status & (VmaStatus.FilePrivate | VmaStatus.FileShared | VmaStatus.AnonShared)) != 0)
            {
                fd = (ulong)files.For(area);
                offset = area.Pgoff;
                // Shared anonymous memory is mapped from its object, which the process gets as a file.
                flags &= ~Mman.MAP_ANONYMOUS;
            }
            long mapped = caller.Checked($"mmap of {Range(area)}", SyscallNumber.Mmap, area.Start, area.End - area.Start, prot, flags, fd, offset);
            if ((ulong)mapped != area.Start)
            {
                throw new InvalidOperationException($"area {Range(area)} was mapped at 0x{mapped:x}");
            }
            if ((area.Flags & Mman.MAP_LOCKED) != 0)
            {
                caller.Checked($"mlock of {Range(area)}", SyscallNumber.Mlock, area.Start, area.End - area.Start);
            }
        }
    }

    private static void Advise(RemoteSyscaller caller, VmaEntry area)
    {
        if (!area.HasMadv)
        {
            return;
        }
        for (int advice = 0; advice < 64; advice++)
        {
            if ((area.Madv & (1UL << advice)) != 0)
            {
                caller.Checked($"madvise({advice}) of {Range(area)}", SyscallNumber.Madvise, area.Start, area.End - area.Start, (ulong)advice);
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
            RegularFiles.CheckMappedFile(session.Images.File(id).Reg);
        }
    }
}
