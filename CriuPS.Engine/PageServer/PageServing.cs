using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Digests;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Restore;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.PageServer;

/// <summary>
/// The server side of a lazy restore: pages of the image directory's checkpoint, read through its pages files and
/// sent on request, after checking that the restore reads this very checkpoint. The image's digests are checked as
/// well: everything but the pages before the first page is sent, each block of pages when first read.
/// </summary>
internal static class PageServing
{
    /// <summary>Serves until the client has every page (true: the server may stop) or closes (false).</summary>
    public static bool Serve(PageServerConnection connection, LazyPageServer server, string imageId)
    {
        ImageSet images;
        PageVerifier verifier;
        try
        {
            images = ImageSet.Read(server.ImagePath);
        }
        catch (CheckpointException e)
        {
            PageServerMessages.Send(connection.Frames, new ErrorMessage(RefusalCode.NoImage, $"there is no image to serve in {server.ImagePath}: {e.Message}"));
            throw;
        }
        try
        {
            verifier = PageVerifier.ForServing(images.Directory);
        }
        catch (CheckpointException e) when (e.Kind == CheckpointErrorKind.ImageCorrupt)
        {
            PageServerMessages.Send(connection.Frames, new ErrorMessage(RefusalCode.Corrupt, e.Message));
            throw;
        }
        if (ImageIdentity.Of(images) != imageId)
        {
            var message = $"it serves the checkpoint in {images.Directory} (run {ImageIdentity.Of(images)}), not the one being restored (run {imageId})";
            PageServerMessages.Send(connection.Frames, new ErrorMessage(RefusalCode.WrongImage, message));
            throw new CheckpointException(CheckpointErrorKind.PageServerRefused, $"A lazy restore of another checkpoint was refused: {message}.", images.Directory);
        }
        PageServerMessages.Send(connection.Frames, new Welcome(PageServerMessages.Version, images.Directory));
        var files = new Dictionary<uint, PageChain>();
        try
        {
            while (true)
            {
                var frame = connection.Receive();
                switch (frame.Type)
                {
                    case FrameType.PageRequest:
                        var request = PageServerMessages.ReadPageRequest(frame);
                        byte[]? data;
                        try
                        {
                            data = Read(images, files, request, verifier);
                        }
                        catch (CheckpointException e) when (e.Kind == CheckpointErrorKind.ImageCorrupt)
                        {
                            // Damaged pages are never served: the restore fails, and kills its process, instead.
                            PageServerMessages.Send(connection.Frames, new ErrorMessage(RefusalCode.Corrupt, e.Message));
                            throw;
                        }
                        if (data is null)
                        {
                            var message = $"the image has no {request.Pages} saved pages at 0x{request.Address:x} of process {request.Pid}";
                            PageServerMessages.Send(connection.Frames, new ErrorMessage(RefusalCode.Refused, message));
                            throw new ProtocolException($"{connection.Peer} asked for pages that are not there: {message}.");
                        }
                        PageServerMessages.SendPageData(connection.Frames, request.Pid, request.Address, data);
                        server.Served(request.Pages);
                        Native.Diagnostics.DeathPoint.Reach(Native.Diagnostics.DeathPoint.Serve);
                        break;
                    case FrameType.Done:
                        PageServerMessages.ReadDone(frame);
                        PageServerMessages.SendEmpty(connection.Frames, FrameType.Goodbye);
                        return true;
                    case FrameType.Close:
                        PageServerMessages.ReadEmpty(frame, FrameType.Close);
                        PageServerMessages.SendEmpty(connection.Frames, FrameType.Goodbye);
                        return false;
                    default:
                        throw new ProtocolException($"{connection.Peer} sent {frame.Type} while fetching pages.");
                }
            }
        }
        finally
        {
            foreach (var file in files.Values)
            {
                file.Dispose();
            }
        }
    }

    private static byte[]? Read(ImageSet images, Dictionary<uint, PageChain> files, PageRequest request, PageVerifier verifier)
    {
        if (!files.TryGetValue(request.Pid, out var file))
        {
            var process = images.Processes.FirstOrDefault(p => p.Pid == request.Pid);
            if (process is null)
            {
                return null;
            }
            file = process.OpenPages(images.Directory, verifier);
            files[request.Pid] = file;
        }
        return file.Read(new Address(request.Address), (int)(request.Pages << Page.Shift));
    }
}
