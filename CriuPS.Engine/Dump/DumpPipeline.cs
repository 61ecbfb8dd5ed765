using System.Diagnostics;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Model;
using CriuPS.Engine.PageServer;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Native.Memory;
using CriuPS.Native.Ptrace;

namespace CriuPS.Engine.Dump;

/// <summary>
/// Checkpoint, top to bottom: check the process from outside, freeze it, let each resource module save its
/// part, write the images, then kill the process (or let it go on); the steps, in order, are
/// <see cref="DumpSteps.Checkpoint"/>. Any failure after the freeze releases the process exactly as it was and
/// removes everything written. Must run on one thread from start to end (ptrace ties a tracee to the thread that
/// seized it).
/// </summary>
public static class DumpPipeline
{

    /// <summary>Checkpoints into the image directory of <see cref="DumpOptions.ImagePath"/>.</summary>
    public static CheckpointImage Run(DumpOptions options, IEngineObserver observer)
    {
        BackgroundCopy.CheckOptions(options);
        if (options.PreDump)
        {
            return PreDumpPipeline.Run(options, observer);
        }
        var parent = options.ParentImage is null ? null : ParentImage.Open(options.ParentImage, options.ImagePath);
        var (session, output) = Dump(options, observer, parent, () => BeginImage(options, parent));
        return CheckpointImageReader.Read(ImageSetWriter.AsWritten(session, output.Location));
    }

    /// <summary>Checkpoints into the image directory of the page server of <see cref="DumpOptions.PageServer"/>.</summary>
    public static RemoteCheckpointImage RunToPageServer(DumpOptions options, IEngineObserver observer)
    {
        var server = options.PageServer ?? throw new ArgumentException("the options name no page server", nameof(options));
        BackgroundCopy.CheckOptions(options);
        if (options.PreDump || options.ParentImage is not null)
        {
            // A pre-dump chain is a chain of directories linked to one another; the protocol carries files only.
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"Process {options.ProcessId}: pre-dumps and images with a parent are written to image directories, not sent to a page server.", options.ProcessId,
                "Pre-dump and checkpoint into directories, then copy them to the other machine together.");
        }
        return SendToPageServer(options, observer, null).Image;
    }

    /// <summary>
    /// Checkpoints (or pre-dumps, with <see cref="DumpOptions.PreDump"/>) into the page server's image directory, on
    /// top of <paramref name="parent"/>, an image sent before to the server that the receiving server links to.
    /// </summary>
    internal static (RemoteCheckpointImage Image, DumpSession Session) SendToPageServer(DumpOptions options, IEngineObserver observer, ParentImage? parent)
    {
        var server = options.PageServer ?? throw new ArgumentException("the options name no page server", nameof(options));
        PageServerImageOutput? sent = null;
        IImageOutput Open() => sent = PageServerImageOutput.Open(server, options.ProcessId, options.Cancellation, options.FailAt);
        var (session, _) = options.PreDump ? PreDumpPipeline.Take(options, observer, parent, Open) : Dump(options, observer, parent, Open);
        var root = session.Processes[0];
        long pages = session.Processes.Sum(p => p.Pagemap.Where(e => !e.IsInParent() && !e.IsLeftBehind()).Sum(e => (long)e.NrPages));
        var image = new RemoteCheckpointImage
        {
            PageServer = server.ToString(),
            Tls = server.Tls,
            Path = sent!.Location,
            RootProcessId = root.Pid,
            Name = root.Stat.Comm,
            ProcessCount = session.TreeOrder.Count,
            ThreadCount = session.Processes.Sum(p => p.Cores.Count),
            MemoryBytes = pages << Page.Shift,
            Pages = pages,
            BytesSent = sent.BytesSent,
            FrozenTime = TimeSpan.FromMicroseconds(session.Stats.FrozenTime),
            TotalTime = TimeSpan.FromMicroseconds(session.Stats.CriupsTotalTime),
            CreatedAt = DateTimeOffset.Now,
            LogPath = sent.LogPath,
        };
        return (image, session);
    }

    // The order lives in DumpSteps.Checkpoint; a background checkpoint takes the same steps, and some of its own.
    private static (DumpSession Session, IImageOutput Output) Dump(DumpOptions options, IEngineObserver observer, ParentImage? parent, Func<IImageOutput> open) =>
        DumpSteps.Take(DumpSteps.Checkpoint, options, observer, parent, open);

    /// <summary>
    /// Ends a dump whose image is committed and whose processes are gone or resumed: records the times, writes
    /// stats-dump (which completes the image but is no condition of it) and closes the log.
    /// </summary>
    internal static void Conclude(DumpSession session, IImageOutput directory, Stopwatch frozenTime, Stopwatch total, string what)
    {
        var log = session.Log;
        session.Stats.FrozenTime = (uint)frozenTime.Elapsed.TotalMicroseconds;
        session.Stats.CriupsTotalTime = (ulong)total.Elapsed.TotalMicroseconds;
        log.Phase("Done");
        log.Write($"frozen for {frozenTime.Elapsed.TotalMilliseconds:F1} ms, {total.Elapsed.TotalMilliseconds:F1} ms in all");
        try
        {
            ImageSetWriter.WriteStats(session);
            directory.Finish();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CheckpointException)
        {
            log.Warning($"The {what} is complete in {directory.Location}, but its stats-dump.img could not be written: {e.Message}");
        }
        log.Dispose();
    }

    /// <summary>
    /// The output every file of a dump goes through: digested as written, with criups-digests.img written at the
    /// commit, unless a benchmark asked for none (<see cref="DumpOptions.SkipDigests"/>; never for a page server,
    /// which verifies what it receives against them).
    /// </summary>
    internal static IImageOutput WithDigests(IImageOutput output, DumpOptions options, EngineLog log) =>
        options.SkipDigests && options.PageServer is null ? output : new DigestedImageOutput(output, log);

    /// <summary>Creates the image directory of a dump, linked to its parent image (as CRIU links it) when it has one.</summary>
    internal static ImageDirectoryTransaction BeginImage(DumpOptions options, ParentImage? parent)
    {
        var directory = ImageDirectoryTransaction.Begin(options.ImagePath, options.Force);
        try
        {
            parent?.Link(directory.WorkPath, directory.FinalPath);
        }
        catch
        {
            directory.Abort();
            throw;
        }
        return directory;
    }

    internal static CheckpointException Explain(Exception e, int pid, string? logPath)
    {
        var error = e switch
        {
            CheckpointException known => known,
            OperationCanceledException => new CheckpointException(CheckpointErrorKind.Cancelled, $"The checkpoint of process {pid} was cancelled; the process was left running as it was.", pid, null, e),
            TraceeGoneException gone => new CheckpointException(CheckpointErrorKind.ProcessExited, $"Process {pid} ended while it was being checkpointed ({gone.Status}).", pid, null, e),
            ImageFormatException format => new CheckpointException(CheckpointErrorKind.DumpFailed, format.Message, format.Path, null, e),
            _ when AccessFailures.Explain(e, pid) is { } denied => denied,
            _ => new CheckpointException(CheckpointErrorKind.DumpFailed, $"Checkpoint of process {pid} failed: {e.Message}. The process was left running as it was.", pid, null, e),
        };
        error.LogPath = logPath;
        return error;
    }
}
