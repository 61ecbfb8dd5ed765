using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Native.Diagnostics;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.RemoteSyscall;
using Tmds.Linux;

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
/// The userfaultfd is made in the process by an injected call, taken over with pidfd_getfd and closed there in the
/// same stop (<see cref="Injection.CallAndClose{T}"/>): the tool holds the only reference. If the tool dies, the
/// kernel closes it, and closing the last reference to a userfaultfd (userfaultfd_release) unregisters every area,
/// clears the protection with it and wakes every thread waiting on a fault, which retries its write and goes on:
/// the process carries on as if nothing happened. Checked on Linux 6.18 by the death points "fault" (the tool
/// killed while a write of the process waits in the handler) and "copy" (BackgroundCheckpoint.Tests.ps1).
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

    private readonly int pid;
    private readonly ProcessMemory memory;
    private readonly EngineLog log;
    private readonly FileDescriptor uffd;
    private readonly PageIndex index;
    private readonly List<AddressRange> protectedAreas = new();

    // Under gate: which of the plan's pages are saved, and the saved contents the copier has not taken yet (pages
    // saved by the handler or while frozen, by address).
    private readonly object gate = new();
    private readonly bool[] saved;
    private readonly Dictionary<ulong, byte[]> ahead = new();
    private string? failure;

    private readonly Thread handler;
    private volatile bool stopping;

    private BackgroundSnapshot(DumpedProcess process, PagePlan plan, EngineLog log, FileDescriptor uffd)
    {
        pid = process.Pid;
        memory = process.Memory;
        this.log = log;
        this.uffd = uffd;
        index = new PageIndex(plan.Copies.SelectMany(c => c.Runs));
        saved = new bool[index.Count];
        handler = new Thread(Serve) { IsBackground = true, Name = $"CriuPS write faults of {pid}" };
    }

    /// <summary>Writes of the process served by the handler.</summary>
    public long Faults { get; private set; }

    /// <summary>Pages the handler saved before the copier reached them.</summary>
    public long PagesSavedOnFault { get; private set; }

    /// <summary>Pages copied while the process was frozen (areas that cannot be protected).</summary>
    public long PagesCopiedFrozen { get; private set; }

    /// <summary>
    /// While the process is frozen, after its pages are planned: protects the pages to copy, copies those of areas
    /// that cannot be protected, and starts the handler.
    /// </summary>
    public static BackgroundSnapshot Arm(DumpedProcess process, PagePlan plan, EngineLog log)
    {
        var uffd = Create(process);
        var snapshot = new BackgroundSnapshot(process, plan, log, uffd);
        try
        {
            Userfaultfd.Handshake(uffd, Features);
            snapshot.Protect(plan);
            snapshot.handler.Start();
            return snapshot;
        }
        catch
        {
            snapshot.Dispose();
            throw;
        }
    }

    private static FileDescriptor Create(DumpedProcess process)
    {
        try
        {
            return process.Injection.CallAndClose("userfaultfd", SyscallNumber.Userfaultfd, CreateFlags, fd =>
            {
                using var pidfd = Pidfd.Open(process.Pid);
                return Pidfd.GetFd(pidfd, fd);
            });
        }
        catch (NativeException e) when (e.Errno == Errno.EPERM)
        {
            throw new CheckpointException(CheckpointErrorKind.InsufficientPrivilege,
                $"Process {process.Pid} cannot be checkpointed in the background: it may not create a userfaultfd that also handles the kernel's writes ({e.Message}); that needs CAP_SYS_PTRACE in the process, or vm.unprivileged_userfaultfd = 1.", process.Pid,
                "Checkpoint it without -Background (frozen while its memory is copied), or set the sysctl vm.unprivileged_userfaultfd to 1.");
        }
    }

    private void Protect(PagePlan plan)
    {
        int areas = 0;
        foreach (var (area, runs) in plan.Copies)
        {
            if (runs.Count == 0)
            {
                continue;
            }
            bool anonymous = area.Policy == PagePolicy.Private && (area.Status & VmaStatus.AnonPrivate) != 0;
            int errno = anonymous ? Userfaultfd.TryRegisterWriteProtect(uffd, area.Info.Range) : Errno.EINVAL;
            if (errno == 0)
            {
                protectedAreas.Add(area.Info.Range);
                foreach (var run in runs)
                {
                    Userfaultfd.WriteProtect(uffd, run);
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
        log.Detail($"background copy of {pid}: {protectedAreas.Count} area(s) write-protected, {PagesCopiedFrozen} page(s) of {areas} other area(s) copied while frozen");
    }

    // Reads a run of an area that stays writable into pages kept for the copier; the process is frozen.
    private void CopyFrozen(AddressRange run)
    {
        var data = memory.Read(run.Start, (int)run.Length.Value);
        for (ulong offset = 0; offset < run.Length.Value; offset += Page.Size)
        {
            var page = run.Start + new ByteCount(offset);
            ahead[page.Value] = data.AsSpan((int)offset, Page.Size).ToArray();
            saved[index.Of(page)] = true;
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
    private unsafe void Serve()
    {
        var events = new UffdMessage[64];
        var waiting = new List<AddressRange>();
        while (!stopping)
        {
            var fd = new pollfd { fd = uffd.Value, events = 1 }; // POLLIN
            LibC.poll(&fd, 1, waiting.Count > 0 ? 1 : 50);
            int count;
            try
            {
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
            // Writes whose protection could not be lifted while a layout event waited to be read: again, now.
            for (int i = waiting.Count - 1; i >= 0; i--)
            {
                if (Unprotect(waiting[i], fromHandler: true))
                {
                    waiting.RemoveAt(i);
                }
            }
        }
    }

    private void Handle(UffdMessage message, List<AddressRange> waiting)
    {
        switch (message.Event)
        {
            case UffdEvent.PageFault:
                Faults++;
                var page = new Address(Page.AlignDown(message.FaultAddress.Value));
                DeathPoint.Reach(DeathPoint.Fault);
                var block = SaveBeforeWrite(page);
                if (!Unprotect(block, fromHandler: true))
                {
                    waiting.Add(block);
                }
                break;
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
                var data = memory.Read(block.Start, (int)block.Length.Value);
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
            if (index.AnyUnsaved(range, saved))
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
