using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Digests;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Migration;
using CriuPS.Engine.PageServer;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Tests.Images;

namespace CriuPS.Engine.Tests.Migration;

/// <summary>
/// A move without the remoting: pre-dump rounds and a final dump streamed to page servers, each server linking its
/// image to the round before, the processes held stopped after the final dump, then resumed or ended.
/// </summary>
public sealed class ProcessMoveTests : IDisposable
{
    private readonly TempDirectory temp = new();
    private readonly List<LazyPageServer> servers = [];

    public void Dispose()
    {
        foreach (var server in servers)
        {
            server.Stop();
        }
        temp.Dispose();
    }

    [Fact]
    public void RoundsAndTheFinalDumpMakeOneChainOnTheServersAndTheProcessIsHeldStoppedUntilResumed()
    {
        using var sleeper = TestProcess.StartSleeper();
        var move = new ProcessMove(new MoveOptions { ProcessId = sleeper.Pid, MaxRounds = 2, MaxDowntime = TimeSpan.Zero });

        var first = RunOnOwnThread(() => move.PreDump(Server("round-1", null), NullObserver.Instance));
        Assert.Null(move.Enough()); // one round predicts nothing yet, and two are allowed
        var second = RunOnOwnThread(() => move.PreDump(Server("round-2", move.ParentPath), NullObserver.Instance));
        Assert.Contains("2 round(s), the most allowed", move.Enough(), StringComparison.Ordinal);
        Assert.Equal([1, 2], move.Rounds.Select(r => r.Number));
        Assert.True(first.Pages > 0);
        Assert.True(second.Pages < first.Pages, $"the second round sent {second.Pages} pages, the first {first.Pages}: only what the sleeper wrote since");
        Assert.Equal('S', sleeper.State);

        var (image, held) = RunOnOwnThread(() => move.FinalDump(Server("final", move.ParentPath), NullObserver.Instance));

        Assert.Equal(temp.PathOf("final"), image.Path);
        Assert.Equal([temp.PathOf("final"), temp.PathOf("round-2"), temp.PathOf("round-1")], PageChain.Directories(image.Path));
        Assert.Empty(ImageVerifier.VerifyChain(image.Path, deferPages: false).Problems);
        Assert.Equal([sleeper.Pid], held.ProcessIds);
        sleeper.WaitForState('T'); // held: stopped, not killed
        held.Resume();
        sleeper.WaitForState('S');
    }

    [Fact]
    public void AHeldTreeIsEndedOnceTheCopyRuns()
    {
        using var sleeper = TestProcess.StartSleeper();
        var move = new ProcessMove(new MoveOptions { ProcessId = sleeper.Pid, MaxRounds = 0 });

        var (_, held) = RunOnOwnThread(() => move.FinalDump(Server("only", null), NullObserver.Instance));
        sleeper.WaitForState('T');
        held.Kill(TimeSpan.FromSeconds(10));

        Assert.Contains(sleeper.State, "ZX");
    }

    private PageServerEndpoint Server(string name, string? parent)
    {
        var server = LazyPageServer.Start(new PageServerOptions { ImagePath = temp.PathOf(name), ParentImage = parent });
        servers.Add(server);
        return new PageServerEndpoint { Host = server.Address, Port = server.Port };
    }

    // Each dump seizes and releases on one thread, as the cmdlets run them (EngineRunner).
    private static T RunOnOwnThread<T>(Func<T> work)
    {
        T? result = default;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = work();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        return failure is null ? result! : throw new InvalidOperationException("the dump failed", failure);
    }
}
