using CriuPS.Engine.Logging;
using CriuPS.Engine.Model;
using CriuPS.Engine.Resources.Memory;

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

    /// <summary>
    /// Pre-dumps into the output <paramref name="open"/> makes (an image directory, or a page server's), on top of
    /// <paramref name="parent"/>. The order lives in <see cref="DumpSteps.PreDump"/>: a checkpoint's steps where a
    /// pre-dump does the same, its own where not.
    /// </summary>
    internal static (DumpSession Session, IImageOutput Output) Take(DumpOptions options, IEngineObserver observer, ParentImage? parent, Func<IImageOutput> open) =>
        DumpSteps.Take(DumpSteps.PreDump, options, observer, parent, open);
}
