using System.Diagnostics;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Model;
using CriuPS.Engine.PageServer;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Migration;

/// <summary>
/// The source's side of a live migration, without the remoting: pre-dump rounds streamed to page servers on the
/// destination, each image linked there to the one before (the server is told its parent, the chain's pages are
/// remembered here as they were sent), until the rounds stop shrinking or are short enough, then the final dump
/// into the same chain with the processes held stopped here until the destination runs them. Who starts the
/// servers and restores there is the caller's business (Move-Process does it through a PowerShell session).
/// Every dump runs on the calling thread (ptrace ties a tracee to its tracer thread while frozen).
/// </summary>
public sealed class ProcessMove
{
    // A round is worth another only when it sent clearly less than the one before: write tracking converges
    // geometrically while the process writes slower than we send; past that, rounds only repeat themselves.
    private const double Shrinking = 0.8;

    private readonly MoveOptions options;
    private readonly List<MoveRound> rounds = [];
    private ParentImage? chain;

    public ProcessMove(MoveOptions options) => this.options = options;

    public IReadOnlyList<MoveRound> Rounds => rounds;

    /// <summary>The image the next round builds on, on the destination (its server links the next one to it).</summary>
    public string? ParentPath => chain?.Directory;

    /// <summary>Sends one pre-dump round to <paramref name="server"/>, whose image directory must follow <see cref="ParentPath"/>.</summary>
    public MoveRound PreDump(PageServerEndpoint server, IEngineObserver observer)
    {
        var clock = Stopwatch.StartNew();
        var (image, session) = DumpPipeline.SendToPageServer(Options(server, preDump: true), observer, chain);
        chain = ParentImage.Sent(image.Path, session.RunId, Holdings(session));
        var round = new MoveRound
        {
            Number = rounds.Count + 1,
            Pages = image.Pages,
            BytesSent = new ByteCount((ulong)image.BytesSent),
            Duration = clock.Elapsed,
            FrozenTime = image.FrozenTime,
        };
        double bestRate = rounds.Append(round).Max(r => r.BytesPerSecond);
        round.PredictedDowntime = image.FrozenTime + (bestRate > 0 ? TimeSpan.FromSeconds(round.BytesSent.Value / bestRate) : round.Duration);
        rounds.Add(round);
        return round;
    }

    /// <summary>Why no further round is needed (the rounds stopped shrinking, are short enough, or are all used), or null to take another.</summary>
    public string? Enough()
    {
        if (rounds.Count == 0)
        {
            return null;
        }
        var last = rounds[^1];
        if (last.PredictedDowntime <= options.MaxDowntime)
        {
            return $"round {last.Number} predicts a freeze of {last.PredictedDowntime.TotalMilliseconds:F0} ms, within {options.MaxDowntime.TotalMilliseconds:F0} ms";
        }
        if (rounds.Count >= options.MaxRounds)
        {
            return $"{rounds.Count} round(s), the most allowed";
        }
        if (rounds.Count >= 2 && last.Pages > rounds[^2].Pages * Shrinking)
        {
            return $"round {last.Number} sent {last.Pages} pages after {rounds[^2].Pages}: the rounds stopped shrinking";
        }
        return null;
    }

    /// <summary>
    /// The final dump into <paramref name="server"/>: frozen, the rest of the state and the pages written since the
    /// last round are sent, and once the server has committed the image the processes are left stopped here.
    /// </summary>
    /// <param name="postCopy">
    /// A post-copy move: the pages a lazy restore can fill are left in the held processes, whose memory this serves
    /// from the moment they are held (its page server must be started before: the restore there asks it at once).
    /// </param>
    public (RemoteCheckpointImage Image, HeldTree Held) FinalDump(PageServerEndpoint server, IEngineObserver observer, HeldMemory? postCopy = null)
    {
        // The rounds made the dump's code hot: its optimized recompilation happens now, before the freeze, not in it.
        observer.Detail($"before the final freeze: {RuntimeQuiet.Wait()}");
        // The dump reads the areas ahead of its freeze (AreasReadAhead), as every final dump does.
        var (image, session) = DumpPipeline.SendToPageServer(Options(server, preDump: false, leaveLazyPages: postCopy is not null), observer, chain);
        try
        {
            postCopy?.Serve(session.Held!, session.RunId);
        }
        catch
        {
            // Nobody holds the processes yet: they must not stay stopped.
            session.Held!.Resume();
            throw;
        }
        return (image, session.Held!);
    }

    private DumpOptions Options(PageServerEndpoint server, bool preDump, bool leaveLazyPages = false) => new()
    {
        LeaveLazyPages = leaveLazyPages,
        ProcessId = options.ProcessId,
        PageServer = server,
        PreDump = preDump,
        HoldStopped = !preDump,
        // Pre-dumps lock nothing; told, they accept the connections that the final dump will carry.
        TcpEstablished = options.TcpEstablished,
        SkipInFlight = options.SkipInFlight,
        FreezeTimeout = options.FreezeTimeout,
        FailAt = options.FailAt,
        Cancellation = options.Cancellation,
    };

    // What the chain holds after an image: every run of its pagemaps, copied into it or left to its parents.
    private static Dictionary<int, IReadOnlyList<AddressRange>> Holdings(DumpSession session) =>
        session.Processes.ToDictionary(p => p.Pid, p => (IReadOnlyList<AddressRange>)p.Pagemap.Select(e => e.Range()).ToList());
}
