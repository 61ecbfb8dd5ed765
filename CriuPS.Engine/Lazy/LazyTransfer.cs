using System.Collections.Concurrent;
using System.Diagnostics;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Resources.Process;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Lazy;

/// <summary>
/// Delivers the missing pages of lazily restored processes, on a thread of its own in this process. It serves
/// faults from the moment an address space is registered (the rest of the restore may already touch lazy memory),
/// and once the processes run it also streams every remaining page in the background, follows their forks, moves,
/// discards and unmaps, and guards them (<see cref="ExitKillGuard"/>). When every page is in it unregisters and
/// closes the userfaultfds and lets the processes go. If the page source fails, or the transfer is stopped (the
/// restore failed, the session ends), the processes are killed: a process without its pages must not run.
/// </summary>
internal sealed class LazyTransfer
{
    // A fault brings the pages that follow it too (programs tend to read on), up to 128 KiB.
    private const int FaultPages = 32;

    // 512 KiB per background step: large enough to stream well, small enough that a fault waits little behind it.
    private const int BackgroundPages = 128;

    // How often a guarded process's stops (signals) are looked at when nothing else wakes the loop.
    private const int GuardLookMs = 5;
    private const int IdleLookMs = 100;

    private static readonly TimeSpan StopWait = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan KillWait = TimeSpan.FromSeconds(5);
    private static readonly List<LazyTransfer> Active = new();

    private readonly ILazyPageSource source;
    private readonly EngineLog log;
    private readonly int root;
    private readonly bool holdBackground;
    private readonly FileDescriptor wake = Eventfd.Create(0, O.NONBLOCK);
    private readonly object wakeGate = new();
    private readonly ConcurrentQueue<LazyAddressSpace> arriving = new();
    private readonly List<LazyAddressSpace> spaces = new();
    private readonly Dictionary<int, FileDescriptor> processes = new();
    private readonly List<ExitKillGuard> guards = new();
    private readonly byte[] buffer = GC.AllocateUninitializedArray<byte>(Math.Max(FaultPages, BackgroundPages) << Page.Shift);
    private readonly UffdMessage[] events = new UffdMessage[64];
    private readonly Thread thread;
    private int[]? running;
    private volatile string? stopReason;
    private volatile bool ownsLog;
    private bool rootExited;
    private int nextSpace;

    /// <summary>Starts serving faults; the thread waits for address spaces (<see cref="Add"/>) and <see cref="Resume"/>.</summary>
    /// <param name="failAt">Test hook (CRIUPS_FAIL_AT): <see cref="FailurePoint.LazyPullHeld"/> streams nothing in the background.</param>
    public LazyTransfer(ILazyPageSource source, EngineLog log, int root, string? failAt = null)
    {
        this.source = source;
        this.log = log;
        this.root = root;
        holdBackground = FailurePoint.IsFor(failAt, FailurePoint.LazyPullHeld, root);
        Status = new LazyRestore(root, source.Description, log.FilePath);
        lock (Active)
        {
            Active.Add(this);
        }
        thread = new Thread(Run) { IsBackground = true, Name = "criups-lazy" };
        thread.Start();
    }

    /// <summary>What the user sees of the transfer.</summary>
    public LazyRestore Status { get; }

    /// <summary>Why the transfer failed by itself, if it did.</summary>
    public CheckpointException? Failure => Status.State == LazyRestoreState.Failed ? Status.Error : null;

    /// <summary>Hands over a registered address space: its faults are served from now on.</summary>
    public void Add(LazyAddressSpace space)
    {
        Status.AddPages((long)space.Missing.Count.Value);
        arriving.Enqueue(space);
        Wake();
    }

    /// <summary>
    /// The processes run: guard them and stream the remaining pages. From here on the transfer owns the log, and
    /// closes it when it ends.
    /// </summary>
    public void Resume(IEnumerable<int> pids)
    {
        ownsLog = true;
        Volatile.Write(ref running, pids.ToArray());
        Wake();
    }

    /// <summary>Stops the transfer, killing the processes that still miss pages, and waits for it to end.</summary>
    public void Abort(string reason)
    {
        stopReason ??= reason;
        Wake();
        if (!Status.IsFinished)
        {
            source.Interrupt(); // a fetch waiting on the network would hold the loop for its whole timeout
        }
        if (Thread.CurrentThread != thread)
        {
            thread.Join(StopWait);
        }
    }

    /// <summary>Stops every transfer of this process (the session is ending).</summary>
    public static void AbortAll(string reason)
    {
        LazyTransfer[] all;
        lock (Active)
        {
            all = Active.ToArray();
        }
        foreach (var transfer in all)
        {
            transfer.Abort(reason);
        }
    }

    private void Run()
    {
        try
        {
            Serve();
            EndSafely(Complete);
        }
        catch (Exception e)
        {
            // Once stopped, a read broken off by Interrupt fails too: the stop is the reason, not the lost source.
            var cause = stopReason is { } reason && e is not CheckpointException { Kind: CheckpointErrorKind.Cancelled }
                ? new CheckpointException(CheckpointErrorKind.Cancelled, reason, root, null, e)
                : e;
            EndSafely(() => Fail(cause));
        }
        finally
        {
            lock (Active)
            {
                Active.Remove(this);
            }
            lock (wakeGate)
            {
                wake.Dispose();
            }
        }
    }

    // Wakes the loop, unless it has ended (its eventfd closed, and its number perhaps reused).
    private void Wake()
    {
        lock (wakeGate)
        {
            if (wake.IsOpen)
            {
                Eventfd.Signal(wake);
            }
        }
    }

    // Nothing may escape this thread (it would end the process); whatever goes wrong at the end is logged.
    private void EndSafely(Action end)
    {
        try
        {
            end();
        }
        catch (Exception e)
        {
            log.Error($"lazy restore: ending the transfer failed: {e}");
            if (!Status.IsFinished)
            {
                Status.Finish(LazyRestoreState.Failed, Explain(e));
            }
        }
    }

    // The loop; returns when every page is in.
    private void Serve()
    {
        bool resumed = false;
        while (true)
        {
            if (stopReason is { } reason)
            {
                throw new CheckpointException(CheckpointErrorKind.Cancelled, reason, root);
            }
            while (arriving.TryDequeue(out var space))
            {
                spaces.Add(space);
            }
            if (!resumed && Volatile.Read(ref running) is { } pids)
            {
                StartRunning(pids);
                resumed = true;
            }
            foreach (var guard in guards)
            {
                guard.PassOnStops();
            }
            bool streaming = resumed && !holdBackground && spaces.Any(s => !s.Missing.IsEmpty);
            var exited = WaitForWork(streaming ? 0 : guards.Count > 0 ? GuardLookMs : IdleLookMs);
            foreach (var space in spaces.ToList())
            {
                ServeEvents(space);
            }
            RetryDeferredFaults();
            NoteExits(exited);
            DropEndedSpaces();
            if (resumed && spaces.All(s => s.IsComplete))
            {
                return;
            }
            if (streaming)
            {
                StreamSome();
            }
        }
    }

    private void StartRunning(int[] pids)
    {
        Status.MarkRunning();
        foreach (int pid in pids)
        {
            processes[pid] = Pidfd.Open(pid);
            if (ExitKillGuard.Attach(pid, log) is { } guard)
            {
                guards.Add(guard);
            }
        }
        Write($"lazy restore: process(es) {string.Join(", ", pids)} running with {Status.PagesTotal} pages still in {source.Description}");
    }

    // Sleeps until a fault or event, an exit, a request of ours, or the timeout; returns the processes that exited.
    private List<int> WaitForWork(int timeoutMs)
    {
        var pids = processes.Keys.ToList();
        var descriptors = new List<FileDescriptor>(1 + pids.Count + spaces.Count) { wake };
        descriptors.AddRange(pids.Select(pid => processes[pid]));
        descriptors.AddRange(spaces.Select(space => space.Uffd));
        var ready = new bool[descriptors.Count];
        if (!Poll.AnyReadable(descriptors, ready, timeoutMs))
        {
            return new List<int>(); // EINTR: look again
        }
        if (ready[0])
        {
            Eventfd.Drain(wake);
        }
        return pids.Where((_, i) => ready[1 + i]).ToList();
    }

    private void ServeEvents(LazyAddressSpace space)
    {
        while (!space.Gone)
        {
            int count = Userfaultfd.ReadEvents(space.Uffd, events);
            if (count == 0)
            {
                return;
            }
            for (int i = 0; i < count; i++)
            {
                Handle(space, events[i]);
            }
        }
    }

    private void Handle(LazyAddressSpace space, UffdMessage message)
    {
        switch (message.Event)
        {
            case UffdEvent.PageFault:
                Status.CountFault();
                Fault(space, message.FaultAddress);
                break;
            case UffdEvent.Fork:
                // The child misses what its parent missed at the fork: the same image pages complete it.
                var child = new LazyAddressSpace(new FileDescriptor(message.ForkDescriptor), space.ImagePid, null, space.Missing.Clone(), space.Registered.Clone());
                Status.AddPages((long)child.Missing.Count.Value);
                spaces.Add(child);
                Write($"{space.Name} forked; the child's {child.Missing.Count.Value} missing pages come from the same image");
                break;
            case UffdEvent.Remap:
                var (from, to, length) = message.Remap;
                Status.Dropped((long)space.Missing.Move(from, to, length).Value);
                space.Registered.Move(from, to, length);
                break;
            case UffdEvent.Remove:
                // Discarded (MADV_DONTNEED): the process expects zeros there now, not the saved pages.
                Status.Dropped((long)space.Missing.Remove(message.Range).Value);
                break;
            case UffdEvent.Unmap:
                Status.Dropped((long)space.Missing.Remove(message.Range).Value);
                space.Registered.Remove(message.Range);
                break;
            default:
                throw new InvalidOperationException($"unexpected userfaultfd event 0x{(byte)message.Event:x} from {space.Name}");
        }
    }

    private void Fault(LazyAddressSpace space, Address address)
    {
        var page = new Address(Page.AlignDown(address.Value));
        if (space.Missing.TryFind(page, out var piece))
        {
            var end = piece.Range.End < page + new PageCount(FaultPages).Bytes ? piece.Range.End : page + new PageCount(FaultPages).Bytes;
            if (!Deliver(space, new AddressRange(page, end), piece.SourceOf(page), onFault: true))
            {
                space.DeferredFaults.Add(page);
            }
            return;
        }
        // A page that was never saved (zeros), or that has arrived meanwhile.
        var one = new AddressRange(page, page + new ByteCount(Page.Size));
        var (_, errno) = Userfaultfd.ZeroPage(space.Uffd, one);
        switch (errno)
        {
            case 0:
                break;
            case Errno.EAGAIN:
                space.DeferredFaults.Add(page);
                break;
            case Errno.ESRCH:
                space.Gone = true;
                break;
            case Errno.EEXIST or Errno.ENOENT:
                Userfaultfd.Wake(space.Uffd, one); // there already, or unmapped: the thread retries and sees which
                break;
            default:
                throw new NativeException($"UFFDIO_ZEROPAGE at {page} in {space.Name}", errno);
        }
    }

    private void RetryDeferredFaults()
    {
        foreach (var space in spaces.Where(s => s.DeferredFaults.Count > 0 && !s.Gone))
        {
            var deferred = space.DeferredFaults.ToList();
            space.DeferredFaults.Clear();
            foreach (var page in deferred)
            {
                Fault(space, page);
            }
        }
    }

    // One background step: the lowest missing pages of the next address space, in turn.
    private void StreamSome()
    {
        for (int tried = 0; tried < spaces.Count; tried++)
        {
            var space = spaces[nextSpace++ % spaces.Count];
            if (space.Gone || space.Missing.IsEmpty)
            {
                continue;
            }
            var piece = space.Missing.First;
            var limit = piece.Range.Start + new PageCount(BackgroundPages).Bytes;
            Deliver(space, new AddressRange(piece.Range.Start, piece.Range.End < limit ? piece.Range.End : limit), piece.Source, onFault: false);
            return;
        }
    }

    /// <summary>
    /// Reads pages from the source and places them; false when the address space was changing (a fork, mremap or
    /// munmap under way: its event must be read first), leaving what was not placed for later.
    /// </summary>
    private bool Deliver(LazyAddressSpace space, AddressRange range, Address image, bool onFault)
    {
        long started = Stopwatch.GetTimestamp();
        var data = buffer.AsSpan(0, (int)range.Length.Value);
        source.Read(space.ImagePid, image, data);
        ulong delivered = 0, dropped = 0;
        bool pageByPage = false;
        var at = range.Start;
        bool finished = true;
        while (at < range.End)
        {
            var rest = data[(int)(at - range.Start).Value..];
            var (placed, errno) = Userfaultfd.Copy(space.Uffd, at, pageByPage ? rest[..Page.Size] : rest);
            if (placed > 0)
            {
                var done = new AddressRange(at, at + new ByteCount((ulong)placed));
                delivered += space.Missing.Remove(done).Value;
                at = done.End;
            }
            if (errno == 0 || (errno == Errno.EAGAIN && placed > 0))
            {
                continue;
            }
            if (errno == Errno.EAGAIN)
            {
                finished = false;
                break;
            }
            if (errno == Errno.ESRCH)
            {
                space.Gone = true;
                break;
            }
            if (errno == Errno.ENOENT && !pageByPage && rest.Length > Page.Size)
            {
                pageByPage = true; // the range may span areas the process has split since: place page by page
                continue;
            }
            if (errno is Errno.EEXIST or Errno.ENOENT)
            {
                // The page is there already, or no longer mapped: nothing to deliver.
                dropped += space.Missing.Remove(new AddressRange(at, at + new ByteCount(Page.Size))).Value;
                at += new ByteCount(Page.Size);
                continue;
            }
            throw new NativeException($"UFFDIO_COPY at {at} in {space.Name}", errno);
        }
        Status.Delivered((long)delivered, onFault, Stopwatch.GetElapsedTime(started));
        Status.Dropped((long)dropped);
        return finished;
    }

    private void NoteExits(List<int> exited)
    {
        foreach (int pid in exited)
        {
            Write($"process {pid} exited with {spaces.Where(s => s.ProcessId == pid).Sum(s => (long)s.Missing.Count.Value)} pages still missing");
            foreach (var space in spaces.Where(s => s.ProcessId == pid))
            {
                space.Gone = true;
            }
            processes[pid].Dispose();
            processes.Remove(pid);
            rootExited |= pid == root;
        }
    }

    // Whether the process is exiting or gone, rather than running another program.
    private static bool HasEnded(int pid)
    {
        try
        {
            var stat = ProcStat.Read(pid);
            return stat.State is 'Z' or 'X' || stat.IsExiting;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true;
        }
    }

    private void DropEndedSpaces()
    {
        foreach (var space in spaces.Where(s => s.Gone).ToList())
        {
            // A killed process's memory is freed before its pidfd says it exited: the transfer may find the root's
            // address space gone (UFFDIO_COPY: ESRCH) first, and with it the last space, which is no completion.
            // An exec ends the address space too, and then the process runs on without those pages.
            if (space.ProcessId == root && !space.Missing.IsEmpty && !rootExited && HasEnded(root))
            {
                Write($"process {root} ended with {space.Missing.Count.Value} pages still missing (its memory gone before its exit was seen)");
                rootExited = true;
            }
            Status.Dropped((long)space.Missing.Count.Value);
            space.Dispose();
            spaces.Remove(space);
        }
    }

    // Every page is in: end the registrations, let the processes go, tell the source.
    private void Complete()
    {
        foreach (var space in spaces)
        {
            foreach (var area in space.Registered.Pieces)
            {
                int errno = Userfaultfd.Unregister(space.Uffd, area.Range);
                if (errno != 0)
                {
                    // Closing the descriptor below ends the registration anyway.
                    Write($"UFFDIO_UNREGISTER of {area.Range} in {space.Name}: {Errno.Describe(errno)}");
                }
            }
            space.Dispose();
        }
        spaces.Clear();
        foreach (var guard in guards)
        {
            guard.Release();
        }
        guards.Clear();
        try
        {
            source.Complete(new PageCount((ulong)(Status.PagesOnFault + Status.PagesInBackground)));
        }
        catch (Exception e)
        {
            Write($"Warn: every page arrived, but {source.Description} could not be told: {e.Message}");
        }
        source.Dispose();
        ReleaseProcesses();
        var outcome = rootExited ? LazyRestoreState.ProcessExited : LazyRestoreState.Completed;
        Write($"lazy restore {outcome}: {Status.PagesOnFault} pages on fault ({Status.Faults} faults, {Status.FaultTime.TotalMilliseconds:F1} ms), " +
              $"{Status.PagesInBackground} in the background ({Status.BackgroundTime.TotalMilliseconds:F1} ms), " +
              $"{Status.PagesDone - Status.PagesOnFault - Status.PagesInBackground} no longer needed, in {Status.Elapsed.TotalMilliseconds:F1} ms");
        Status.Finish(outcome);
        CloseLog();
    }

    private void Fail(Exception e)
    {
        var error = Explain(e);
        log.Error($"lazy restore: {error.Message}{Environment.NewLine}{e}");
        log.Flush();
        KillProcesses();
        // Only now that the processes are gone may the descriptors close: a live process would read zeros.
        foreach (var space in spaces.Concat(arriving))
        {
            space.Dispose();
        }
        spaces.Clear();
        arriving.Clear();
        guards.Clear();
        source.Dispose();
        ReleaseProcesses();
        Status.Finish(LazyRestoreState.Failed, error);
        CloseLog();
    }

    private CheckpointException Explain(Exception e)
    {
        var kind = e is CheckpointException known ? known.Kind : CheckpointErrorKind.RestoreFailed;
        var why = e is NativeException or IOException or CheckpointException ? e.Message : $"{e.GetType().Name}: {e.Message}";
        return new CheckpointException(kind,
            $"The lazy restore of process {root} stopped with {Status.PagesTotal - Status.PagesDone} of {Status.PagesTotal} pages missing, " +
            $"and the process was killed rather than left to run without its memory: {why}",
            root,
            kind == CheckpointErrorKind.Cancelled ? null : $"Restore it again once {source.Description} is available; see the log for details.",
            e)
        {
            LogPath = log.FilePath,
        };
    }

    // Kills the restored processes and whatever they forked, and waits until they are gone.
    private void KillProcesses()
    {
        var pids = processes.Keys
            .Concat(Volatile.Read(ref running) ?? Array.Empty<int>())
            .Concat(spaces.Concat(arriving).Select(s => s.ProcessId).OfType<int>())
            .Distinct()
            .SelectMany(Tree)
            .Distinct()
            .ToList();
        // A pidfd of each, taken before the kill, names that process even once its pid is free, and polls readable
        // when it has exited: the kernel wakes us.
        var ending = pids.Select(Pidfd.TryOpen).OfType<FileDescriptor>().ToList();
        foreach (int pid in pids)
        {
            Kill.Send(pid, Signals.SIGKILL);
        }
        long deadline = Environment.TickCount64 + (long)KillWait.TotalMilliseconds;
        foreach (var pidfd in ending)
        {
            using (pidfd)
            {
                Pidfd.WaitExited(pidfd, TimeSpan.FromMilliseconds(Math.Max(0, deadline - Environment.TickCount64)));
            }
        }
        Write($"killed {string.Join(", ", pids)}");
    }

    private static IEnumerable<int> Tree(int pid)
    {
        try
        {
            return ProcessTree.Discover(pid).Where(m => !m.IsZombie).Select(m => m.Pid).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new[] { pid }; // ending already
        }
    }

    private void ReleaseProcesses()
    {
        foreach (var pidfd in processes.Values)
        {
            pidfd.Dispose();
        }
        processes.Clear();
    }

    private void Write(string line)
    {
        log.Write(line);
        log.Flush();
    }

    private void CloseLog()
    {
        if (ownsLog)
        {
            log.Dispose();
        }
    }
}
