using System.Diagnostics;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Model;
using CriuPS.Engine.Privileges;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Restore;

/// <summary>
/// Restore, top to bottom: read and check every image, open the files the process needs, fork a child with the
/// saved PID from a seized host, turn it into the saved process resource by resource with injected system
/// calls, then set its registers and let it go. A failure kills whatever was created: nothing half-restored
/// survives. Must run on one thread from start to end.
/// </summary>
public static class RestorePipeline
{
    public static RestoredProcess Run(RestoreOptions options, IEngineObserver observer)
    {
        var log = new EngineLog(observer, options.Cancellation);
        RestoredProcess? restored = null;
        try
        {
            restored = Restore(options, log);
            return restored;
        }
        finally
        {
            // A lazy restore's page transfer goes on writing restore.log, and closes it when it ends.
            if (restored?.LazyRestore is null)
            {
                log.Dispose();
            }
        }
    }

    private static RestoredProcess Restore(RestoreOptions options, EngineLog log)
    {
        var total = Stopwatch.StartNew();
        // The order lives in RestoreSteps.Order; once the checks passed, a step that fails undoes what the steps made.
        using var steps = new RestoreSteps(options, log, total);
        steps.RunAll();

        var session = steps.Session;
        var images = session.Images;
        var root = images.Root;
        int hostPid = session.Pids.Host(root.Pid);
        int? initPid = session.Pids.InitHostPid;
        steps.NamespaceInit?.Dispose();
        if (!options.Detach && options.HostProcessId is null) // else the caller that started the host reaps
        {
            ChildReaper.Watch(initPid ?? hostPid); // the namespace's init ends with the root, with its status
        }
        log.Phase("Done");
        log.Write(initPid is null
            ? $"restored {root.Pid} in {total.Elapsed.TotalMilliseconds:F1} ms"
            : $"restored {root.Pid} as {hostPid} in a new PID namespace (its init: {initPid}) in {total.Elapsed.TotalMilliseconds:F1} ms");
        log.EndPhase();
        var restored = new RestoredProcess
        {
            Id = hostPid,
            NamespacePid = root.Pid,
            PidNamespaceInit = initPid,
            Name = root.Name,
            ImagePath = images.Directory,
            ParentId = ProcStat.Read(hostPid).PPid,
            Detached = options.Detach,
            ThreadCount = root.Cores.Count,
            MemoryBytes = root.Pagemap.Sum(e => (long)((e.HasNrPages ? e.NrPages : e.CompatNrPages) << Page.Shift)),
            RestoreTime = total.Elapsed,
            ReadTime = steps.ReadTime,
            VerifyTime = steps.Verified.Elapsed,
            MemoryTime = steps.MemoryTime,
            LogPath = log.FilePath,
            LazyRestore = session.Lazy?.Status,
            Cgroups = steps.Cgroups,
        };
        // Last: from here on the transfer owns the log.
        session.Lazy?.Resume(steps.Processes.Select(p => p.Pid));
        return restored;
    }

    internal static CheckpointException Explain(Exception e, int pid, string? logPath)
    {
        var error = e switch
        {
            CheckpointException known => known,
            OperationCanceledException => new CheckpointException(CheckpointErrorKind.Cancelled, $"The restore of process {pid} was cancelled; nothing was left running.", pid, null, e),
            _ when AccessFailures.Explain(e, pid) is { } denied => denied,
            _ => new CheckpointException(CheckpointErrorKind.RestoreFailed, $"Restore of process {pid} failed: {e.Message}. Nothing was left running.", pid, null, e),
        };
        error.LogPath = logPath;
        return error;
    }
}
