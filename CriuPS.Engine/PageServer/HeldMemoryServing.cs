using CriuPS.Engine.Errors;
using CriuPS.Engine.Migration;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.PageServer;

/// <summary>
/// The source's side of a post-copy move: the pages a lazy restore on the destination asks for, read out of the held
/// processes' memory (as CRIU's dump --lazy-pages serves them), after checking that the restore reads the final
/// dump of these very processes. Same protocol as <see cref="PageServing"/>: Welcome, then PageRequest / PageData
/// until Done (every page has arrived: the server may stop, and the held processes may end).
/// </summary>
internal static class HeldMemoryServing
{
    // FailurePoint.PostCopyLinkCut: pages sent before the connection is broken off.
    private const long PagesBeforeCut = 1024;

    /// <summary>Serves until the client has every page (true) or closes (false).</summary>
    public static bool Serve(PageServerConnection connection, LazyPageServer server, HeldMemory memory, string imageId)
    {
        if (memory.RunId is not { } runId || runId != imageId)
        {
            var message = memory.RunId is null
                ? "it holds no processes yet (the final dump has not ended)"
                : $"it serves the memory of the processes held by run {memory.RunId}, not of run {imageId}";
            PageServerMessages.Send(connection.Frames, new ErrorMessage(RefusalCode.WrongImage, message));
            throw new CheckpointException(CheckpointErrorKind.PageServerRefused, $"A lazy restore was refused: {message}.", imageId);
        }
        PageServerMessages.Send(connection.Frames, new Welcome(PageServerMessages.Version, $"held processes of run {runId}"));
        while (true)
        {
            var frame = connection.Receive();
            switch (frame.Type)
            {
                case FrameType.PageRequest:
                    var request = PageServerMessages.ReadPageRequest(frame);
                    var data = memory.Read((int)request.Pid, new Address(request.Address), (int)(request.Pages << Page.Shift));
                    if (data is null)
                    {
                        var message = $"process {request.Pid} is not one of the held processes";
                        PageServerMessages.Send(connection.Frames, new ErrorMessage(RefusalCode.Refused, message));
                        throw new ProtocolException($"{connection.Peer} asked for pages that are not served: {message}.");
                    }
                    PageServerMessages.SendPageData(connection.Frames, request.Pid, request.Address, data);
                    server.Served(request.Pages);
                    if (memory.FailAt == FailurePoint.PostCopyLinkCut && memory.PagesSent >= PagesBeforeCut)
                    {
                        connection.Abort();
                        throw new IOException($"the connection to {connection.Peer} was broken off on purpose ({FailurePoint.PostCopyLinkCut}).");
                    }
                    break;
                case FrameType.Done:
                    PageServerMessages.ReadDone(frame);
                    memory.Arrived();
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
}
