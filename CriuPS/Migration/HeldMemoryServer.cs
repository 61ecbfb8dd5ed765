using System.Security.Cryptography.X509Certificates;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Migration;
using CriuPS.Engine.PageServer;

namespace CriuPS.Migration;

/// <summary>
/// The source's page server of a post-copy move: it serves the held processes' memory to the restore there, on the
/// address the session came from (what the destination reaches this machine at), over TLS with the move's
/// certificate, accepting only the destination's certificate, made there and pinned through the session.
/// </summary>
internal sealed class HeldMemoryServer : IDisposable
{
    private readonly LazyPageServer server;

    private HeldMemoryServer(HeldMemory memory, LazyPageServer server, PostCopySource source)
    {
        Memory = memory;
        this.server = server;
        Source = source;
    }

    public HeldMemory Memory { get; }

    /// <summary>What the restore there is told: where to fetch, and which certificate to expect.</summary>
    public PostCopySource Source { get; }

    /// <param name="failAt">Test hook (CRIUPS_FAIL_AT), for a link cut mid-post-copy.</param>
    public static HeldMemoryServer Start(MoveDestination destination, X509Certificate2 certificate, int processId, string? failAt)
    {
        var (address, destinationThumbprint) = destination.PostCopyClient();
        var memory = new HeldMemory(failAt);
        var server = LazyPageServer.StartForHeldMemory(new PageServerOptions
        {
            ImagePath = $"memory of process {processId}, held for {destination.ComputerName}",
            Address = address,
            Certificate = certificate,
            ClientThumbprints = [destinationThumbprint],
        }, memory);
        return new HeldMemoryServer(memory, server, new PostCopySource($"{server.Address}:{server.Port}", certificate.Thumbprint));
    }

    /// <summary>The copy there said it has every page (its Done reached this server), or the move fails.</summary>
    public void RequireAllArrived(string computer, int restored)
    {
        if (Memory.AllPagesArrived is null)
        {
            throw new CheckpointException(CheckpointErrorKind.PageServerUnavailable,
                $"The copy {restored} on {computer} ended its lazy restore without telling this machine's server that every page arrived ({Memory.PagesSent} pages sent){(server.Error is { } error ? $": {error.Message}" : "")}.", restored);
        }
    }

    public void Dispose()
    {
        server.Stop();
        Memory.Dispose();
    }
}
