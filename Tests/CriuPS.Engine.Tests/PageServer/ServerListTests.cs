using CriuPS.Engine.PageServer;

namespace CriuPS.Engine.Tests.PageServer;

/// <summary>The process's list of page servers keeps every running server and only the newest of those that ended.</summary>
[Collection(nameof(ServerListTests))] // alone: servers other tests end at the same time would take places in the list
public class ServerListTests
{
    [Fact]
    public void ASessionThatStartsManyServersKeepsOnlyTheNewestEndedOnes()
    {
        var root = Directory.CreateTempSubdirectory("criups-servers-");
        try
        {
            var started = Enumerable.Range(0, LazyPageServer.EndedServersKept + 8)
                .Select(i => LazyPageServer.Start(new PageServerOptions { ImagePath = Path.Combine(root.FullName, $"image{i}") }))
                .ToList();
            var running = LazyPageServer.Start(new PageServerOptions { ImagePath = Path.Combine(root.FullName, "running") });
            Parallel.ForEach(started, server => server.Stop());

            var listed = LazyPageServer.All;
            Assert.Contains(running, listed);
            // Ended servers go oldest first, the order they were started in.
            Assert.Equal(started.TakeLast(LazyPageServer.EndedServersKept), listed.Where(started.Contains));
            running.Stop();
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }
}

[CollectionDefinition(nameof(ServerListTests), DisableParallelization = true)]
public class ServerListCollection;
