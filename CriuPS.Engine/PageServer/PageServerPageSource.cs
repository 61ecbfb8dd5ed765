using CriuPS.Engine.Lazy;
using CriuPS.Engine.Restore;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.PageServer;

/// <summary>
/// A lazy restore's pages fetched from a page server, one request at a time. The server is checked to hold the very
/// checkpoint being restored (its inventory's run id) before anything is created.
/// </summary>
internal sealed class PageServerPageSource : ILazyPageSource
{
    private readonly PageServerEndpoint endpoint;
    private readonly PageServerConnection connection;
    private readonly int root;

    private PageServerPageSource(PageServerEndpoint endpoint, PageServerConnection connection, int root)
    {
        this.endpoint = endpoint;
        this.connection = connection;
        this.root = root;
    }

    public static PageServerPageSource Connect(PageServerEndpoint endpoint, ImageSet images)
    {
        var (connection, _) = PageServerClient.Connect(endpoint, SessionPurpose.LazyPages, ImageIdentity.Of(images), images.Directory);
        return new PageServerPageSource(endpoint, connection, images.Root.Pid);
    }

    public string Description => endpoint.Description;

    public void Read(int pid, Address address, Span<byte> destination)
    {
        try
        {
            PageServerMessages.Send(connection.Frames, new PageRequest((uint)pid, address.Value, (uint)(destination.Length >> Page.Shift)));
            var (from, at, data) = PageServerMessages.ReadPageData(connection.Expect(FrameType.PageData));
            if (from != pid || at != address.Value || data.Length != destination.Length)
            {
                throw new ProtocolException($"{endpoint.Description} answered a request for {destination.Length} bytes at {address} of {pid} with {data.Length} bytes at 0x{at:x} of {from}.");
            }
            data.Span.CopyTo(destination);
        }
        catch (Exception e)
        {
            throw PageServerClient.Lost(e, endpoint, root);
        }
    }

    public void Complete(PageCount pages)
    {
        try
        {
            PageServerMessages.SendDone(connection.Frames, pages.Value);
            connection.Expect(FrameType.Goodbye);
        }
        catch (Exception e)
        {
            throw PageServerClient.Lost(e, endpoint, root);
        }
    }

    public void Interrupt() => connection.Abort();

    public void Dispose() => connection.Dispose();
}

/// <summary>What identifies a checkpoint between a restore and a page server: inventory.img's run id.</summary>
internal static class ImageIdentity
{
    public static string Of(ImageSet images) => images.Inventory.HasDumpCriuRunId ? images.Inventory.DumpCriuRunId : "";
}
