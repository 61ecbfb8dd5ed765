using System.Diagnostics;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Dump;

/// <summary>
/// The memory of a background checkpoint (<see cref="DumpOptions.Background"/>): protected in every process ahead of
/// the freeze while the tree runs (<see cref="ArmAhead"/>), armed while it is frozen (<see cref="BackgroundSnapshot"/>),
/// copied once it runs again, process after process, each process's protection released as soon as its pages are saved.
/// </summary>
internal sealed class BackgroundCopy : IDisposable
{
    private readonly List<(DumpedProcess Process, PagePlan Plan, BackgroundSnapshot Snapshot)> armed = new();

    // Processes armed ahead of the freeze, by PID, until the freeze takes them over; a process that ended meanwhile
    // is disposed with the copy, one forked meanwhile is armed from scratch at the freeze.
    private readonly Dictionary<int, BackgroundSnapshot> armedAhead = new();

    // VmFlags of each process read while it runs ahead of the freeze: the freeze reads maps, not smaps (VmFlagsAhead).
    private readonly Dictionary<int, VmFlagsAhead> flagsAhead = new();

    /// <summary>Refuses what a background checkpoint cannot be combined with, before anything is frozen.</summary>
    public static void CheckOptions(DumpOptions options)
    {
        if (!options.Background)
        {
            return;
        }
        string? conflict = !options.LeaveRunning ? "it is for processes left running (-LeaveRunning): a process that is killed may as well stay frozen"
            : options.PreDump ? "a pre-dump copies memory while the process runs already"
            : options.ParentImage is not null ? "it saves every page: the writes since a parent image are tracked by another userfaultfd"
            : options.PageServer is not null ? "it writes to image directories only"
            : null;
        if (conflict is not null)
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"Process {options.ProcessId} cannot be checkpointed in the background this way: {conflict}.", options.ProcessId,
                "Use -Background with -LeaveRunning and an image directory, without -PreDump or -ParentImage.");
        }
    }

    /// <summary>
    /// Ahead of the freeze: stops the tree for as long as it takes to make a userfaultfd in each process (a few
    /// injected calls; counted in <paramref name="frozenTime"/>, since the processes stand still), lets it go, and
    /// protects each process's memory while it runs: the long walk over every page is no longer done frozen.
    /// </summary>
    public void ArmAhead(DumpOptions options, EngineLog log, Stopwatch frozenTime)
    {
        log.Phase("Arming the background copy");
        var stopped = Stopwatch.StartNew();
        frozenTime.Start();
        var tree = FrozenTree.Freeze(options.ProcessId, options.FreezeTimeout, log);
        var seized = stopped.Elapsed;
        var injected = TimeSpan.Zero;
        var areas = new Dictionary<int, List<VmaInfo>>();
        try
        {
            foreach (var process in tree.Processes)
            {
                var memory = tree.OpenMemory(process.ProcessId);
                // maps, not smaps: smaps counts every page of every area, which takes as long as the memory is large.
                var vmas = SmapsParser.ReadMaps(process.ProcessId);
                var injection = tree.BeginInjection(process, memory, vmas);
                armedAhead[process.ProcessId] = BackgroundSnapshot.ArmAhead(process.ProcessId, injection, log);
                areas[process.ProcessId] = vmas;
            }
            injected = stopped.Elapsed;
        }
        finally
        {
            tree.Release(log);
            frozenTime.Stop();
            tree.Dispose();
        }
        // Where the stop goes: seizing and parking the threads, then the injected calls (mapping the injection area,
        // userfaultfd(2), pidfd_getfd, close(2)), then unmapping the area and letting every thread go.
        log.Detail($"background copy: userfaultfd made in {armedAhead.Count} process(es) in a stop of {stopped.Elapsed.TotalMilliseconds:F1} ms "
            + $"(seizing {seized.TotalMilliseconds:F1} ms, injecting {(injected - seized).TotalMilliseconds:F1} ms, releasing {(stopped.Elapsed - injected).TotalMilliseconds:F1} ms)");
        foreach (var (pid, snapshot) in armedAhead)
        {
            snapshot.RegisterAhead(areas[pid]);
        }
        // Once our userfaultfd is registered (which sets a VmFlag), and before the pages are protected: the pages the
        // process writes while smaps is read (its page walk takes about 100 ms per GiB) are protected again by the
        // passes that follow, not at the freeze, where each of them cost (8245 pages took 12 ms of a 4 GiB freeze).
        foreach (var pid in armedAhead.Keys)
        {
            try
            {
                flagsAhead[pid] = VmFlagsAhead.Read(pid);
            }
            catch (IOException e)
            {
                log.Detail($"areas of {pid}: smaps could not be read ahead of the freeze ({e.Message}): it is read while frozen");
            }
        }
        // Last, right before the freeze: the fewer pages written between the last pass and the freeze, the fewer
        // the freeze protects again.
        foreach (var snapshot in armedAhead.Values)
        {
            snapshot.ProtectAhead();
        }
    }

    /// <summary>
    /// While frozen: the areas of a process, from maps with the VmFlags read ahead of the freeze, or null when there are
    /// none or the layout changed since (smaps must be read then).
    /// </summary>
    public List<VmaInfo>? AreasAtFreeze(int pid, EngineLog log) => flagsAhead.GetValueOrDefault(pid)?.AtFreeze(log);

    /// <summary>
    /// Protects the planned pages of a frozen process that are not protected yet (copying those that cannot be
    /// protected); from then on its writes are saved first.
    /// </summary>
    public void Arm(DumpedProcess process, PagePlan plan, EngineLog log)
    {
        armedAhead.Remove(process.Pid, out var ahead);
        armed.Add((process, plan, BackgroundSnapshot.Arm(process, plan, log, ahead)));
    }

    /// <summary>
    /// Copies every process's pages while the tree runs, once the VmFlags taken from ahead of the freeze are
    /// confirmed (first, so that the window in which a change could go unseen stays short).
    /// </summary>
    public void Copy(DumpSession session)
    {
        foreach (var (process, _, _) in armed)
        {
            if (flagsAhead.GetValueOrDefault(process.Pid) is { Used: true } flags)
            {
                flags.Confirm(process.Vmas, session.Log);
            }
        }
        foreach (var (process, plan, snapshot) in armed)
        {
            try
            {
                Pages.Copy(process, session, plan, whileRunning: false, snapshot);
            }
            catch (NativeException)
            {
                // A read that failed because the process changed under the copy: the snapshot knows what happened.
                snapshot.ThrowIfFailed();
                throw;
            }
            snapshot.Dispose();
        }
    }

    public void Dispose()
    {
        foreach (var (_, _, snapshot) in armed)
        {
            snapshot.Dispose();
        }
        foreach (var snapshot in armedAhead.Values)
        {
            snapshot.Dispose();
        }
    }
}
