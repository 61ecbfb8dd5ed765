using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Process;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// Copy-on-write memory after fork, as CRIU restores it: a process's private anonymous memory is restored before it
/// forks its children, which inherit it copy-on-write; a child then keeps every area it had from its forker unchanged
/// since (same place, size, protection and flags), writes only the pages whose saved contents differ from the
/// forker's (<see cref="InheritedPages"/>) and maps the rest afresh. Pages a forked tree still shared when it was
/// saved are shared again, instead of being copied into every process (a pre-fork server's memory would multiply by
/// its workers). The rest of the address space is restored later, by <see cref="AddressSpace"/>, which leaves these
/// areas in place.
/// </summary>
internal static class ForkedMemory
{
    private const VmaStatus NotPlainAnonymous = VmaStatus.FilePrivate | VmaStatus.FileShared | VmaStatus.AnonShared | VmaStatus.SysVIpc
        | VmaStatus.Socket | VmaStatus.Vdso | VmaStatus.Vvar | VmaStatus.Vsyscall | VmaStatus.AioRing | VmaStatus.Memfd
        | VmaStatus.ShadowStack | VmaStatus.Guard | VmaStatus.Uprobes | VmaStatus.Unsupported;

    /// <summary>
    /// The least private anonymous memory a parent restores before its children are forked. Below it, sharing saves
    /// little, and the few injected calls it takes more per process made a ring of 32 small processes restore slower.
    /// </summary>
    private static readonly ByteCount MinimumShared = ByteCount.FromMiB(1);

    /// <summary>The areas each process got before its children were forked, by saved PID.</summary>
    private sealed class Restored
    {
        public Dictionary<int, IReadOnlyList<VmaEntry>> Areas { get; } = new();

        public TimeSpan Elapsed { get; set; }
    }

    /// <summary>
    /// Whether the restore brings memory in before the forks: for a tree (a single process has nothing to share), and
    /// not when pages arrive lazily (they are not there to inherit).
    /// </summary>
    private static bool Applies(RestoreSession session) => session.Lazy is null && session.Images.Processes.Count > 1;

    /// <summary>The areas of a process restored before its children were forked, which its address space keeps.</summary>
    public static IReadOnlyList<VmaEntry> AreasOf(RestoreSession session, int pid) =>
        session.State<Restored>().Areas.GetValueOrDefault(pid) ?? [];

    /// <summary>The time spent restoring memory while the tree was created, part of the restore's memory time.</summary>
    public static TimeSpan Elapsed(RestoreSession session) => session.State<Restored>().Elapsed;

    /// <summary>
    /// Restores the private anonymous memory of <paramref name="shell"/>, just created and not yet a parent, from what
    /// it inherited of <paramref name="forker"/> (the process that forked it, when that restored its own memory here;
    /// null when it came from the host or a stand-in, whose memory is not the forker's saved one).
    /// </summary>
    public static void Restore(RestoreSession session, ProcessShell shell, ProcessShell? forker)
    {
        if (!Applies(session) || shell.IsZombie)
        {
            return;
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var state = session.State<Restored>();
        var images = session.Images.Processes.First(p => p.Pid == shell.Pid);
        var inherited = forker is not null && state.Areas.TryGetValue(forker.Pid, out var forkerAreas) ? forkerAreas : [];
        var plain = images.Mm.Vmas.Where(IsPlainAnonymous).ToList();
        bool forks = session.Images.Tree.Any(c => (int)c.Ppid == shell.Pid && (int)c.Pid != shell.Pid);
        if (inherited.Count == 0 && (!forks || SavedBytes(images, plain) < MinimumShared.Value))
        {
            return; // its address space restore maps it all, as for a single process
        }
        // Our own areas stay: the injection area, and this kernel's vDSO family that the address space restore moves.
        var ours = Vdso.RuntimeAreas(SmapsParser.ReadMaps(shell.HostPid)).Select(v => v.Range).Append(shell.Injection.Scratch.Range).ToList();
        var areas = plain.Where(a => !ours.Any(r => r.Overlaps(Range(a)))).ToList();
        var inheritedByStart = inherited.ToDictionary(a => a.Start); // the forker's areas do not overlap
        var forkerImages = forker is null ? null : session.Images.Processes.First(p => p.Pid == forker.Pid);

        var pages = OpenedPages.Of(session, images);
        var owns = areas.Select(area => InheritedPages.Within(pages, Range(area))).ToList();
        long savedBytes = owns.Sum(own => own.Sum(r => (long)r.Range.Length.Value));
        var forkerPages = inherited.Count > 0 ? OpenedPages.Of(session, forkerImages!) : null;
        var write = new List<PageRun>();
        var discard = new List<AddressRange>();
        var madeWritable = new List<VmaEntry>();
        var mapping = new SyscallBatch(shell.Injection);
        int kept = 0;
        foreach (var (area, own) in areas.Zip(owns))
        {
            List<PageRun> toWrite;
            if (!inheritedByStart.TryGetValue(area.Start, out var same) || !SameArea(area, same))
            {
                ulong prot = area.Prot | (own.Count > 0 ? Mman.PROT_WRITE : 0);
                mapping.Add("mmap", Range(area), RemoteCall.Mmap(Range(area), prot, area.Flags | Mman.MAP_FIXED, fd: -1, offset: 0));
                toWrite = own;
            }
            else
            {
                kept++;
                (toWrite, var dropped) = InheritedPages.Compare(own, InheritedPages.Within(forkerPages!, Range(area)));
                discard.AddRange(dropped);
                if (toWrite.Count > 0 && (area.Prot & Mman.PROT_WRITE) == 0)
                {
                    mapping.Add("mprotect", Range(area), RemoteCall.Mprotect(Range(area), area.Prot | Mman.PROT_WRITE));
                }
            }
            if (toWrite.Count > 0 && (area.Prot & Mman.PROT_WRITE) == 0)
            {
                madeWritable.Add(area);
            }
            write.AddRange(toWrite);
        }
        foreach (var range in discard)
        {
            // Private anonymous memory reads zeros once its pages are dropped: what the child had there.
            mapping.Add($"madvise(MADV_DONTNEED) of {range}", RemoteCall.Madvise(range, Mman.MADV_DONTNEED));
        }
        mapping.Run();

        var process = new RestoringProcess(images, shell.Leader, shell.Memory, shell.Injection);
        long bytes = write.Sum(r => (long)r.Range.Length.Value);
        Pages.Restore(session, process, write, bytes);
        // The children inherit each area with its saved protection.
        var protection = new SyscallBatch(shell.Injection);
        foreach (var area in madeWritable)
        {
            protection.Add("mprotect", Range(area), RemoteCall.Mprotect(Range(area), area.Prot));
        }
        protection.Run();
        state.Areas[shell.Pid] = areas;
        state.Elapsed += clock.Elapsed;
        session.Log.Detail($"memory of {shell.Pid} before its children: {areas.Count} private anonymous areas, {kept} of them kept from {forker?.Pid.ToString() ?? "no forker"}; "
            + $"{bytes >> Page.Shift} of {savedBytes >> Page.Shift} saved pages written, {discard.Sum(r => (long)r.Pages.Value)} inherited pages dropped");
    }

    // The bytes the process's pagemap lists in these areas (in address order).
    private static ulong SavedBytes(ProcessImages images, List<VmaEntry> areas) =>
        (ulong)SortedRanges.Intersect(images.Pagemap.Select(e => e.Range()).ToList(), areas.Select(Range).OrderBy(r => r.Start).ToList()).Sum(r => (long)r.Length.Value);

    // Private anonymous memory that is nothing else (no file, no vDSO, no System V segment), not locked (mlock wants
    // the pages of its own) and not droppable.
    private static bool IsPlainAnonymous(VmaEntry area)
    {
        var status = (VmaStatus)area.Status;
        return (status & (VmaStatus.Regular | VmaStatus.AnonPrivate)) == (VmaStatus.Regular | VmaStatus.AnonPrivate) && (status & NotPlainAnonymous) == 0
            && (area.Flags & (uint)(Mman.MAP_LOCKED | Mman.MAP_DROPPABLE)) == 0 && (area.Flags & (uint)Mman.MAP_PRIVATE) != 0;
    }

    // An area the child has from its forker unchanged since the fork (as CRIU matches them: same range and kind).
    private static bool SameArea(VmaEntry area, VmaEntry forkers) =>
        area.Start == forkers.Start && area.End == forkers.End && area.Prot == forkers.Prot && area.Flags == forkers.Flags && area.Status == forkers.Status;

    private static AddressRange Range(VmaEntry area) => new(area.Start, area.End);
}
