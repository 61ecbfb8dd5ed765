using System.Diagnostics;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Model;
using CriuPS.Engine.Resources.Cgroups;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Dump;

/// <summary>
/// A pre-dump: the memory of a running process tree saved while it keeps running, to make the final dump small and
/// its freeze short. The tree is frozen only to find the pages to save (those written since the parent image, when
/// there is one and its writes were tracked) and to arm write tracking for the next dump; the pages are copied once
/// it runs again. A page written meanwhile may be copied torn, but its write is tracked: the next dump copies it
/// again. The images are CRIU's for a pre-dump: inventory, pagemaps and pages, and a `parent` link. The processes
/// are never ended. Must run on one thread from start to end (ptrace ties a tracee to the thread that seized it).
/// </summary>
internal static class PreDumpPipeline
{
    public static CheckpointImage Run(DumpOptions options, IEngineObserver observer)
    {
        var parent = options.ParentImage is null ? null : ParentImage.Open(options.ParentImage, options.ImagePath);
        var (_, directory) = Take(options, observer, parent, () => DumpPipeline.BeginImage(options, parent));
        return CheckpointImageReader.Read(directory.Location);
    }

    /// <summary>Pre-dumps into the output <paramref name="open"/> makes (an image directory, or a page server's), on top of <paramref name="parent"/>.</summary>
    internal static (DumpSession Session, IImageOutput Output) Take(DumpOptions options, IEngineObserver observer, ParentImage? parent, Func<IImageOutput> open)
    {
        var total = Stopwatch.StartNew();
        using var log = new EngineLog(observer, options.Cancellation);
        log.Phase("Checking the process");
        EngineWarmup.Wait();
        DumpRehearsal.EnsureDone(log);
        int root = options.ProcessId;
        Preflight.CheckTarget(root);
        var (tracks, detail) = WriteTracking.SelfTest();
        if (!tracks)
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"Process {root} cannot be pre-dumped: pre-dumps need write tracking, which this machine lacks ({detail}).", root,
                "Take a full checkpoint instead; Test-CheckpointSupport -Name WriteTracking says what is missing.");
        }
        // A tree that the final dump would refuse is refused now, before anything is copied.
        Preflight.CheckTree(root, options);
        var directory = DumpPipeline.WithDigests(open(), options, log);
        log.AttachFile(directory.LogPath);
        log.Write($"CriuPS {typeof(PreDumpPipeline).Assembly.GetName().Version} pre-dumping {root} into {directory.Location}{(parent is null ? "" : $" on top of {parent.Directory}")} on {Environment.OSVersion}");
        var session = new DumpSession(options, log, directory, parent);
        using var quiet = ProcStat.Read(root).PPid == Environment.ProcessId ? ChildStopNotifications.Suppress() : null;
        var frozenTime = new Stopwatch();
        FrozenTree? tree = null;
        CgroupFreezer? cgroup = null;
        bool frozen = false;
        var armed = new List<TrackedProcess>();
        try
        {
            log.Phase("Freezing");
            cgroup = options.FreezeCgroup is { } frozenCgroup ? CgroupFreezer.Freeze(frozenCgroup, options.FreezeTimeout, log) : null;
            tree = FrozenTree.Freeze(root, options.FreezeTimeout, log, cgroup);
            frozen = true;
            frozenTime.Start();
            FailurePoint.Check(options.FailAt, FailurePoint.AfterSeize);
            tree.Attach(session);

            log.Phase("Finding pages and tracking writes");
            var plans = new List<PagePlan>();
            foreach (var process in session.Processes)
            {
                var areas = AddressSpace.PageAreas(process, session);
                var plan = Pages.Plan(process, session, areas, parent, rearm: true);
                armed.Add(WriteTracking.Arm(process, plan, areas, log));
                plans.Add(plan);
            }

            log.Phase("Resuming the processes");
            tree.Release(log);
            frozen = false;
            frozenTime.Stop();

            log.Phase("Saving memory");
            for (int i = 0; i < session.Processes.Count; i++)
            {
                Pages.Copy(session.Processes[i], session, plans[i], whileRunning: true);
            }

            log.Phase("Writing images");
            ImageSetWriter.WritePreDump(session);
            log.Flush();
            directory.Commit();
            log.Relocate(directory.LogPath);
            foreach (var tracking in armed)
            {
                WriteTracking.Publish(tracking, session.RunId);
            }
        }
        catch (Exception e)
        {
            log.Error(e.ToString());
            if (frozen)
            {
                tree!.Release(log);
            }
            // Writes seen by this pre-dump were counted from it on; without its image they are lost: start over.
            foreach (var process in session.Processes)
            {
                WriteTracking.End(process.Pid);
            }
            log.Dispose();
            var kept = directory.Abort();
            throw DumpPipeline.Explain(e, root, kept);
        }
        finally
        {
            tree?.Dispose();
            cgroup?.Dispose();
        }

        DumpPipeline.Conclude(session, directory, frozenTime, total, "pre-dump");
        return (session, directory);
    }
}
