using System.Diagnostics;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Native.Diagnostics;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// One process's memory saved exactly as it was at the freeze while the process runs again (Checkpoint-Process
/// -Background), the way QEMU takes a background snapshot of a virtual machine: while frozen, every page to save in a
/// private anonymous area is write-protected by a userfaultfd in synchronous mode; the process is let go, and the
/// pages are copied in address order (<see cref="Pages.Copy"/>) while a handler thread here serves the process's
/// writes to pages not copied yet: it saves the page first, with the unsaved pages of its 64 KiB block (still the
/// old ones: the write waits), then lifts the block's protection, which lets the write go on. The copier lifts the protection of each batch once it is read.
/// Pages of areas that cannot be protected (private file mappings, whose copy-on-write pages synchronous protection
/// does not cover) are copied while the process is frozen; shared memory is saved while frozen by its own module.
/// <para>
/// Protecting a page costs the same whether the process is frozen or not (hundreds of ms per GiB here), so it is
/// done ahead of the freeze (<see cref="ArmAhead"/>, <see cref="ProtectAhead"/>): the userfaultfd is made in a stop
/// of its own (an injected call, a few ms), every private anonymous area is registered and protected while the
/// process runs, and the pages it writes meanwhile are let go without being saved (the handler only lifts their
/// protection: nothing is being saved yet), then protected again, pass after pass, until few are left. At the freeze
/// (<see cref="Arm"/>) only the pages that are not protected then are protected again, found with one PAGEMAP_SCAN
/// (<see cref="PageScanner.ScanUnprotected"/>, bits only: milliseconds per GiB), and from then on a write means
/// "save first". Why that image is exactly the memory at the freeze is said where the meaning changes
/// (<see cref="BeginSaving"/>).
/// </para>
/// <para>
/// The userfaultfd is made in the process by an injected call, taken over with pidfd_getfd and closed there in the
/// same stop (<see cref="Injection.CallAndClose{T}"/>): the tool holds the only reference. If the tool dies, the
/// kernel closes it, and closing the last reference to a userfaultfd (userfaultfd_release) unregisters every area,
/// clears the protection with it and wakes every thread waiting on a fault, which retries its write and goes on:
/// the process carries on as if nothing happened. Checked on Linux 6.18 by the death points "arm" (the tool killed
/// while it protects the running process ahead of the freeze), "fault" (killed while a write of the process waits in
/// the handler) and "copy" (BackgroundCheckpoint.Tests.ps1).
/// </para>
/// <para>
/// The process may not discard (madvise), unmap or move (mremap) memory whose pages are not saved yet: such an event
/// (UFFD_FEATURE_EVENT_REMOVE/UNMAP/REMAP; the process's call waits until the handler has read it) fails the
/// checkpoint, whose image could no longer be the memory at the freeze; the process goes on unharmed. A child forked
/// during the copy is not in the image; without UFFD_FEATURE_EVENT_FORK the kernel gives it no protection, so its
/// writes never wait on us.
/// </para>
/// </summary>
internal sealed class BackgroundSnapshot : IDisposable
{
    /// <summary>Non-cooperative events: a change of layout under pages not saved yet must be seen, not missed.</summary>
    private const ulong Features = Userfaultfd.FeatureEventRemap | Userfaultfd.FeatureEventRemove | Userfaultfd.FeatureEventUnmap;

    // A write fault saves and releases the aligned block of pages around it (within its area): a process that writes
    // one page mostly writes the next ones too, and each fault costs it a round trip through the handler.
    private const int FaultBlockPages = 16;

    // Not UFFD_USER_MODE_ONLY: a write the kernel makes for the process (read(2) into a protected buffer) must wait
    // for the handler too; with that flag it would fail with EFAULT. Needs CAP_SYS_PTRACE in the process (or
    // vm.unprivileged_userfaultfd = 1).
    private const ulong CreateFlags = (ulong)(O.CLOEXEC | O.NONBLOCK);

    // Ahead of the freeze, passes that protect again what the process wrote meanwhile stop once a pass finds no
    // more than this (the freeze protects the rest), or after MaxAheadPasses: a process that writes faster than we
    // protect is left to the freeze.
    private static readonly PageCount FewEnoughAhead = new(1024);
    private const int MaxAheadPasses = 4;

    private readonly int pid;
    private readonly EngineLog log;
    private readonly FileDescriptor uffd;
    private readonly PageScanner? scanner; // null without PAGEMAP_SCAN: the freeze protects every planned page then

    // The areas registered with the userfaultfd, in address order: those registered ahead of the freeze until it,
    // then those the freeze registered. Replaced whole (the handler reads it without the gate).
    private volatile List<AddressRange> protectedAreas = new();

    // Under gate: whether a write means "save first" (set while frozen, see BeginSaving), which of the plan's pages
    // are saved, and the saved contents the copier has not taken yet (pages saved by the handler or while frozen,
    // by address).
    private readonly object gate = new();
    private bool saving;
    private ProcessMemory? memory;
    private PageIndex index = new([]);
    private bool[] saved = [];
    private readonly Dictionary<ulong, byte[]> ahead = new();
    private string? failure;

    // Under gate: the blocks the handler let go ahead of the freeze since the current pass began (ProtectAhead). With
    // the pages the plan's scan found unprotected, they are every page the freeze must protect again (see Protect).
    private readonly List<AddressRange> liftedSincePass = new();

    private readonly Thread handler;
    private volatile bool stopping;

    private BackgroundSnapshot(int pid, EngineLog log, FileDescriptor uffd)
    {
        this.pid = pid;
        this.log = log;
        this.uffd = uffd;
        scanner = PagemapScan.IsSupported() ? new PageScanner(pid, usePagemapScan: true) : null;
        handler = new Thread(Serve) { IsBackground = true, Name = $"CriuPS write faults of {pid}" };
    }

    /// <summary>Writes of the process served by the handler.</summary>
    public long Faults { get; private set; }

    /// <summary>Pages the handler saved before the copier reached them.</summary>
    public long PagesSavedOnFault { get; private set; }

    /// <summary>Pages copied while the process was frozen (areas that cannot be protected).</summary>
    public long PagesCopiedFrozen { get; private set; }

    /// <summary>Pages protected again at the freeze: not protected then (written since they were protected ahead, or new).</summary>
    public long PagesProtectedAtFreeze { get; private set; }

    /// <summary>
    /// In a stop of its own ahead of the freeze (<paramref name="injection"/> begun in the stopped process): makes the
    /// userfaultfd. Nothing is protected yet: <see cref="ProtectAhead"/> does that once the process runs again.
    /// </summary>
    public static BackgroundSnapshot ArmAhead(int pid, Injection injection, EngineLog log) => Start(pid, injection, log);

    /// <summary>
    /// While the process is frozen, after its pages are planned: protects the pages to copy that are not protected
    /// yet (all of them without <paramref name="armedAhead"/>), copies those of areas that cannot be protected, and
    /// from then on saves a page before the process writes it.
    /// </summary>
    public static BackgroundSnapshot Arm(DumpedProcess process, PagePlan plan, EngineLog log, BackgroundSnapshot? armedAhead)
    {
        var snapshot = armedAhead ?? Start(process.Pid, process.Injection, log);
        try
        {
            snapshot.BeginSaving(process, plan);
            snapshot.Protect(plan);
            if (!snapshot.handler.IsAlive)
            {
                snapshot.handler.Start();
            }
            return snapshot;
        }
        catch
        {
            snapshot.Dispose();
            throw;
        }
    }

    private static BackgroundSnapshot Start(int pid, Injection injection, EngineLog log)
    {
        var uffd = Create(pid, injection);
        var snapshot = new BackgroundSnapshot(pid, log, uffd);
        try
        {
            Userfaultfd.Handshake(uffd, Features);
            return snapshot;
        }
        catch
        {
            snapshot.Dispose();
            throw;
        }
    }

    private static FileDescriptor Create(int pid, Injection injection)
    {
        try
        {
            return injection.CallAndClose("userfaultfd", RemoteCall.Userfaultfd(CreateFlags), fd =>
            {
                using var pidfd = Pidfd.Open(pid);
                return Pidfd.GetFd(pidfd, fd);
            });
        }
        catch (NativeException e) when (e.Errno == Errno.EPERM)
        {
            throw new CheckpointException(CheckpointErrorKind.InsufficientPrivilege,
                $"Process {pid} cannot be checkpointed in the background: it may not create a userfaultfd that also handles the kernel's writes ({e.Message}); that needs CAP_SYS_PTRACE in the process, or vm.unprivileged_userfaultfd = 1.", pid,
                "Checkpoint it without -Background (frozen while its memory is copied), or set the sysctl vm.unprivileged_userfaultfd to 1.");
        }
    }

    /// <summary>
    /// While the process runs, ahead of its freeze: registers its private anonymous areas (<paramref name="areas"/>,
    /// read from /proc/PID/maps) for write protection, nothing protected yet (<see cref="ProtectAhead"/>). An area that
    /// went away or cannot be registered is left to the freeze, which finds its pages unprotected.
    /// </summary>
    public void RegisterAhead(IReadOnlyList<VmaInfo> areas)
    {
        if (scanner is null)
        {
            return; // without PAGEMAP_SCAN the freeze could not find what was written meanwhile: it protects everything
        }
        var registered = new List<AddressRange>();
        foreach (var area in areas.Where(a => a.IsAnonymous && !a.Shared && (!a.IsSpecial || a.Path is "[heap]" or "[stack]" || a.Path.StartsWith("[anon:", StringComparison.Ordinal))))
        {
            if (Userfaultfd.TryRegisterWriteProtect(uffd, area.Range) == 0)
            {
                registered.Add(area.Range);
            }
        }
        protectedAreas = registered;
        handler.Start();
    }

    /// <summary>
    /// While the process runs, ahead of its freeze: protects the pages of the areas registered ahead, then protects
    /// again, pass after pass, the pages it wrote meanwhile. What fails here (an area that went away) is left to the
    /// freeze, which finds its pages unprotected.
    /// </summary>
    public void ProtectAhead()
    {
        var registered = protectedAreas;
        if (scanner is null || registered.Count == 0)
        {
            return;
        }
        // The first pass protects everything; each later one what the process wrote during the one before.
        var passes = new List<PageCount>();
        var clock = Stopwatch.StartNew();
        do
        {
            lock (gate)
            {
                liftedSincePass.Clear(); // what this pass's scan cannot have seen is lifted from here on
            }
            var pass = PageCount.Zero;
            foreach (var area in registered)
            {
                DeathPoint.Reach(DeathPoint.Arm);
                pass += ProtectUnprotected(area, whileRunning: true);
            }
            passes.Add(pass);
        }
        while (passes.Count < MaxAheadPasses && passes[^1].CompareTo(FewEnoughAhead) > 0);
        log.Detail($"background copy of {pid}: armed ahead of the freeze: {registered.Count} area(s) registered, pages protected by pass: {string.Join(", ", passes.Select(p => p.Value))} ({clock.Elapsed.TotalMilliseconds:F1} ms)");
    }

    /// <summary>
    /// The instant the meaning of a write changes, while the process is frozen. Until now a write fault meant "this page
    /// changed after it was protected ahead": the handler lifted the protection, under the gate, without saving
    /// anything. From now on it means "save the page before it changes". Why the image is exactly the memory at the
    /// freeze: (1) the process is stopped, so no page changes from here until it resumes; (2) this flip takes the gate,
    /// which the handler holds across its "ahead" lifts, so when it returns no such lift is under way, and every later
    /// fault (including a fault read before the freeze and served only now) is served the saving way, from pages that
    /// cannot have changed since the freeze; (3) after the flip, <see cref="Protect"/> scans every planned run and
    /// protects each page it finds unprotected, so when the process resumes every planned page of a protected area is
    /// either protected (its contents are those of the freeze until a write, which waits until it is saved) or saved
    /// already. A thread that was waiting on a fault when it was stopped left the wait (its message is dropped) and
    /// faults again once resumed.
    /// </summary>
    private void BeginSaving(DumpedProcess process, PagePlan plan)
    {
        var planned = new PageIndex(plan.Copies.SelectMany(c => c.Runs));
        lock (gate)
        {
            memory = process.Memory;
            index = planned;
            saved = new bool[planned.Count];
            saving = true;
        }
    }

    /// <summary>
    /// Protects, while frozen, every planned page of a registered area that is not protected, without walking every
    /// page table entry again: a page is unprotected at this instant either because it was when the plan's scan walked
    /// it (the scan reports it: <see cref="PagePlan.Unprotected"/>, PAGE_IS_WRITTEN) or because the handler lifted its
    /// protection after that, which makes it a lift after the last pass ahead began, recorded under the gate with the
    /// lift itself (<see cref="ServeWrite"/>); since <see cref="BeginSaving"/> no such lift is made, and the process
    /// is stopped, so nothing populates a page either. A run the plan's scan did not cover (read from
    /// /proc/PID/pagemap) is scanned here as before.
    /// </summary>
    private void Protect(PagePlan plan)
    {
        List<AddressRange> lifted;
        lock (gate)
        {
            lifted = SortedRanges.Union(liftedSincePass);
        }
        int areas = 0;
        var registered = new List<AddressRange>();
        foreach (var (area, runs) in plan.Copies)
        {
            if (runs.Count == 0)
            {
                continue;
            }
            bool anonymous = area.Policy == PagePolicy.Private && (area.Status & VmaStatus.AnonPrivate) != 0;
            // Registered ahead with this userfaultfd, registering again changes nothing and costs nothing; a part
            // mapped since gets registered now.
            int errno = anonymous ? Userfaultfd.TryRegisterWriteProtect(uffd, area.Info.Range) : Errno.EINVAL;
            if (errno == 0)
            {
                registered.Add(area.Info.Range);
                foreach (var run in runs)
                {
                    var unprotected = scanner is null ? null : plan.Unprotected?.Within(run);
                    if (unprotected is null)
                    {
                        PagesProtectedAtFreeze += (long)ProtectUnprotected(run, whileRunning: false).Value;
                        continue;
                    }
                    unprotected.AddRange(SortedRanges.Intersect(lifted, [run]));
                    PagesProtectedAtFreeze += (long)WriteProtect(SortedRanges.Union(unprotected), whileRunning: false).Value;
                }
                continue;
            }
            if (anonymous)
            {
                log.Detail($"background copy of {pid}: {area.Info} cannot be write-protected ({Errno.Describe(errno)}): its pages are copied while frozen");
            }
            foreach (var run in runs)
            {
                CopyFrozen(run);
            }
            areas++;
        }
        protectedAreas = registered;
        log.Detail($"background copy of {pid}: {registered.Count} area(s) write-protected ({PagesProtectedAtFreeze} page(s) protected at the freeze), {PagesCopiedFrozen} page(s) of {areas} other area(s) copied while frozen");
    }

    // Protects the pages of a registered range that are not protected (all of them without PAGEMAP_SCAN); returns
    // how many. While the process runs, the range may be unmapped or changed under us: that is left to the freeze.
    private PageCount ProtectUnprotected(AddressRange range, bool whileRunning) =>
        WriteProtect(scanner is null ? [range] : scanner.ScanUnprotected(range), whileRunning);

    // Protects runs of a registered area; returns how many pages.
    private PageCount WriteProtect(List<AddressRange> runs, bool whileRunning)
    {
        ulong pages = 0;
        foreach (var run in runs)
        {
            int errno;
            while ((errno = Userfaultfd.TryWriteProtect(uffd, run)) == Errno.EAGAIN)
            {
                Thread.Yield(); // a layout event waits to be read by the handler
            }
            if (errno == 0)
            {
                pages += run.Pages.Value;
            }
            else if (!whileRunning)
            {
                throw new NativeException($"ioctl(UFFDIO_WRITEPROTECT, {run}) in process {pid}", errno);
            }
        }
        return new PageCount(pages);
    }

    // Reads a run of an area that stays writable into pages kept for the copier; the process is frozen.
    private void CopyFrozen(AddressRange run)
    {
        lock (gate)
        {
            var data = memory!.Read(run.Start, (int)run.Length.Value);
            for (ulong offset = 0; offset < run.Length.Value; offset += Page.Size)
            {
                var page = run.Start + new ByteCount(offset);
                ahead[page.Value] = data.AsSpan((int)offset, Page.Size).ToArray();
                saved[index.Of(page)] = true;
            }
        }
        PagesCopiedFrozen += (long)run.Pages.Value;
    }

    /// <summary>
    /// Called by the copier once it has read a batch of runs (still protected, or saved here first): puts the pages
    /// saved ahead of it in place of what it read, and marks every page saved. Throws the reason the snapshot failed.
    /// </summary>
    public void Settle(IReadOnlyList<PageSink.Run> runs, byte[] buffer)
    {
        lock (gate)
        {
            ThrowIfFailedLocked();
            foreach (var run in runs)
            {
                int first = index.Of(run.Range.Start);
                for (int i = 0; i < (int)run.Range.Pages.Value; i++)
                {
                    var page = run.Range.Start.Value + ((ulong)i << Page.Shift);
                    if (saved[first + i] && ahead.Remove(page, out var old))
                    {
                        old.CopyTo(buffer.AsSpan(run.Offset + (i << Page.Shift), Page.Size));
                    }
                    saved[first + i] = true;
                }
            }
        }
    }

    /// <summary>Called by the copier once a settled batch is handed to the writer: lifts the protection of its pages.</summary>
    public void Release(IReadOnlyList<PageSink.Run> runs)
    {
        foreach (var run in runs)
        {
            foreach (var area in protectedAreas)
            {
                if (area.Overlaps(run.Range))
                {
                    Unprotect(run.Range.Intersect(area), fromHandler: false);
                }
            }
        }
        ThrowIfFailed();
    }

    /// <summary>Throws the reason the snapshot failed, if it did.</summary>
    public void ThrowIfFailed()
    {
        lock (gate)
        {
            ThrowIfFailedLocked();
        }
    }

    private void ThrowIfFailedLocked()
    {
        if (failure is not null)
        {
            throw new CheckpointException(CheckpointErrorKind.DumpFailed, $"The background checkpoint of process {pid} failed: {failure}. The process runs on unharmed.", pid,
                "Checkpoint it without -Background: frozen while its memory is copied, it cannot change it meanwhile.");
        }
    }

    private void Fail(string why)
    {
        lock (gate)
        {
            failure ??= why;
        }
    }

    // The handler: sleeps until the process writes to a protected page or changes its layout, until stopped.
    private void Serve()
    {
        var events = new UffdMessage[64];
        var waiting = new List<Address>();
        while (!stopping)
        {
            int count;
            try
            {
                // Woken by an event, or on time to see `stopping` (sooner while writes wait to be let go); the read
                // below does not block, whatever the wait ended with.
                Poll.Readable(uffd, waiting.Count > 0 ? 1 : 50);
                count = Userfaultfd.ReadEvents(uffd, events);
            }
            catch (NativeException e)
            {
                Fail($"reading its write faults: {e.Message}");
                return;
            }
            for (int i = 0; i < count; i++)
            {
                Handle(events[i], waiting);
            }
            // Writes whose protection could not be lifted while a layout event waited to be read: again, now (the
            // saving way, if the freeze came meanwhile).
            for (int i = waiting.Count - 1; i >= 0; i--)
            {
                if (ServeWrite(waiting[i]))
                {
                    waiting.RemoveAt(i);
                }
            }
        }
    }

    private void Handle(UffdMessage message, List<Address> waiting)
    {
        switch (message.Event)
        {
            case UffdEvent.PageFault:
                Faults++;
                var page = new Address(Page.AlignDown(message.FaultAddress.Value));
                DeathPoint.Reach(DeathPoint.Fault);
                if (!ServeWrite(page))
                {
                    waiting.Add(page);
                }
                break;
            // Ahead of the freeze nothing is saved yet: a change of layout loses nothing, and the freeze plans the
            // pages of the layout it finds.
            case UffdEvent.Remove:
                Changed(message.Range, "discarded (madvise)");
                break;
            case UffdEvent.Unmap:
                Changed(message.Range, "unmapped");
                break;
            case UffdEvent.Remap:
                var (from, _, length) = message.Remap;
                Changed(new AddressRange(from, from + length), "moved (mremap)");
                break;
        }
    }

    // Lets a write to a protected page go on; false when the protection could not be lifted yet (try again). Ahead of
    // the freeze the page is only let go (the freeze protects it again); from the freeze on, it is saved first.
    private bool ServeWrite(Address page)
    {
        lock (gate)
        {
            if (!saving)
            {
                // Lifted under the gate: once the freeze has flipped the meaning (BeginSaving), no such lift is left
                // under way to undo the protection the freeze puts back. Recorded with the lift, under the same gate:
                // a pass that begins after it scans the block; one that began before finds it in the record.
                var block = BlockAround(page);
                liftedSincePass.Add(block);
                return Unprotect(block, fromHandler: true);
            }
        }
        return Unprotect(SaveBeforeWrite(page), fromHandler: true);
    }

    // Saves the block around a page the process is about to write, the pages of it the copier has not saved yet
    // (still protected: the write waits, so they are the old pages); returns the block, to release.
    private AddressRange SaveBeforeWrite(Address page)
    {
        var block = BlockAround(page);
        lock (gate)
        {
            if (!index.AnyUnsaved(block, saved))
            {
                return block;
            }
            try
            {
                var data = memory!.Read(block.Start, (int)block.Length.Value);
                for (int offset = 0; offset < data.Length; offset += Page.Size)
                {
                    var each = block.Start + new ByteCount((ulong)offset);
                    if (index.TryOf(each, out int i) && !saved[i])
                    {
                        ahead[each.Value] = data.AsSpan(offset, Page.Size).ToArray();
                        saved[i] = true;
                        PagesSavedOnFault++;
                    }
                }
            }
            catch (NativeException e)
            {
                failure ??= $"saving pages {block} before the process wrote them: {e.Message}";
            }
        }
        return block;
    }

    // The aligned block of FaultBlockPages around a page, within the protected area that holds it: releasing memory
    // outside every registered area would fail, and the write would wait for ever.
    private AddressRange BlockAround(Address page)
    {
        var protectedAreas = this.protectedAreas;
        var single = new AddressRange(page, page + new ByteCount(Page.Size));
        int found = protectedAreas.BinarySearch(single, AreaStartComparer.Instance);
        found = found >= 0 ? found : ~found - 1;
        if (found < 0 || !protectedAreas[found].Contains(page))
        {
            return single;
        }
        const ulong blockBytes = (ulong)FaultBlockPages * Page.Size;
        var aligned = new AddressRange(page.Value & ~(blockBytes - 1), (page.Value & ~(blockBytes - 1)) + blockBytes);
        return aligned.Intersect(protectedAreas[found]);
    }

    private sealed class AreaStartComparer : IComparer<AddressRange>
    {
        public static readonly AreaStartComparer Instance = new();

        public int Compare(AddressRange x, AddressRange y) => x.Start.CompareTo(y.Start);
    }

    // A change of layout under pages not saved yet takes them away before they can be: the snapshot fails.
    private void Changed(AddressRange range, string what)
    {
        lock (gate)
        {
            if (saving && index.AnyUnsaved(range, saved))
            {
                failure ??= $"it {what} memory at {range} whose pages were not saved yet";
            }
        }
    }

    // Lifts the protection of a range (which wakes the writes waiting there); false when it must be tried again.
    private bool Unprotect(AddressRange range, bool fromHandler)
    {
        while (true)
        {
            int errno = Userfaultfd.TryUnprotect(uffd, range);
            switch (errno)
            {
                case 0:
                case Errno.ENOENT: // unmapped since: an event says whether that lost anything
                    return true;
                case Errno.EAGAIN when fromHandler:
                    return false; // a layout event waits to be read, by this very thread
                case Errno.EAGAIN:
                    Thread.Yield();
                    continue;
                default:
                    Fail($"lifting the write protection of {range}: {Errno.Describe(errno)} (the process ended or replaced its address space)");
                    return true;
            }
        }
    }

    /// <summary>Stops the handler and closes the userfaultfd: whatever is still protected is released.</summary>
    public void Dispose()
    {
        if (stopping)
        {
            return;
        }
        stopping = true;
        if (handler.IsAlive)
        {
            handler.Join();
        }
        uffd.Dispose();
        scanner?.Dispose();
        log.Detail($"background copy of {pid}: {Faults} write fault(s) served, {PagesSavedOnFault} page(s) saved before the process wrote them");
    }

    /// <summary>The pages of a plan's runs (in address order), numbered from 0.</summary>
    private sealed class PageIndex
    {
        private readonly ulong[] starts;
        private readonly ulong[] ends;
        private readonly int[] firsts;

        public PageIndex(IEnumerable<AddressRange> runs)
        {
            var list = runs.ToList();
            starts = list.Select(r => r.Start.Value).ToArray();
            ends = list.Select(r => r.End.Value).ToArray();
            firsts = new int[list.Count];
            for (int i = 0; i < list.Count; i++)
            {
                firsts[i] = Count;
                Count += (int)list[i].Pages.Value;
            }
        }

        public int Count { get; }

        public int Of(Address page) => TryOf(page, out int i) ? i : throw new InvalidOperationException($"page {page} is not planned");

        public bool TryOf(Address page, out int i)
        {
            int run = Array.BinarySearch(starts, page.Value);
            run = run >= 0 ? run : ~run - 1;
            if (run >= 0 && page.Value < ends[run])
            {
                i = firsts[run] + (int)((page.Value - starts[run]) >> Page.Shift);
                return true;
            }
            i = -1;
            return false;
        }

        public bool AnyUnsaved(AddressRange range, bool[] saved)
        {

            for (var page = new Address(Page.AlignDown(range.Start.Value)); page < range.End; page += new ByteCount(Page.Size))
            {
                if (TryOf(page, out int i) && !saved[i])
                {
                    return true;
                }
            }
            return false;
        }
    }
}
