using CriuPS.Engine.Errors;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Dump;

/// <summary>
/// The memory of a background checkpoint (<see cref="DumpOptions.Background"/>): armed in every process while the
/// tree is frozen (<see cref="BackgroundSnapshot"/>), copied once it runs again, process after process, each
/// process's protection released as soon as its pages are saved.
/// </summary>
internal sealed class BackgroundCopy : IDisposable
{
    private readonly List<(DumpedProcess Process, PagePlan Plan, BackgroundSnapshot Snapshot)> armed = new();

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

    /// <summary>Protects the planned pages of a frozen process (copying those that cannot be protected).</summary>
    public void Arm(DumpedProcess process, PagePlan plan, Logging.EngineLog log) =>
        armed.Add((process, plan, BackgroundSnapshot.Arm(process, plan, log)));

    /// <summary>Copies every process's pages while the tree runs.</summary>
    public void Copy(DumpSession session)
    {
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
    }
}
