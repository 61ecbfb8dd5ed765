using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Digests;
using CriuPS.Engine.Resources.Memory;

namespace CriuPS.Engine.PageServer;

/// <summary>
/// The server side of a dump: the image files arrive into a transaction on the image directory (hidden, 0700,
/// files 0600, one per session: dumps received at once do not see each other) that becomes visible only on Commit;
/// a session that ends before leaves nothing. A committed image is final: after the commit the session may only
/// close, and anything else ends it with the image as committed (the client keeps stats-dump, which follows the
/// commit, on its side). Every file is digested as it arrives and checked, at the commit, against the digests the
/// client wrote with it (criups-digests.img): a file damaged on its way makes the server refuse the commit
/// (RefusalCode.Corrupt), and keep nothing. A dump may send at most <see cref="PageServerLimits.MaxImageFiles"/>
/// files and <see cref="PageServerLimits.MaxImageSize"/> bytes, with <see cref="PageServerLimits.MaxOpenFiles"/>
/// open at once: past that it is refused, and nothing it sent is kept. The server's own failure to store what arrives
/// (a full disk, a directory removed under it) ends the dump the same way, and the client is told what failed.
/// </summary>
internal static class DumpReceiver
{
    public static void Receive(PageServerConnection connection, LazyPageServer server)
    {
        ImageDirectoryTransaction transaction;
        try
        {
            transaction = ImageDirectoryTransaction.Begin(server.ImagePath, force: false);
        }
        catch (CheckpointException e)
        {
            PageServerMessages.Send(connection.Frames, new ErrorMessage(RefusalCode.Refused, e.Message));
            throw;
        }
        var open = new Dictionary<uint, (string Name, Stream Stream, long Length)>();
        // Every file is digested as its bytes arrive, to be checked against the client's manifest.
        var digesters = new Dictionary<uint, BlockDigester>();
        var received = new List<FileDigest>();
        var limits = server.Limits;
        int files = 0;
        ulong bytes = 0;
        try
        {
            if (server.ParentImage is { } parent)
            {
                // The chain a restore follows: this image's pages not in it are in the parent the operator named.
                Store(connection, transaction, PageChain.ParentLink, () => System.IO.File.CreateSymbolicLink(Path.Combine(transaction.WorkPath, PageChain.ParentLink), Path.GetRelativePath(transaction.FinalPath, parent)));
            }
            PageServerMessages.Send(connection.Frames, new Welcome(PageServerMessages.Version, transaction.FinalPath));
            while (true)
            {
                var frame = connection.Receive();
                if (transaction.Committed && frame.Type != FrameType.Close)
                {
                    Refuse(connection, $"it sent {frame.Type} after the commit: the image {transaction.FinalPath} is committed, and nothing can be added to it or replaced");
                }
                switch (frame.Type)
                {
                    case FrameType.FileBegin:
                        var begin = PageServerMessages.ReadFileBegin(frame);
                        if (!IsImageFileName(begin.Name) || open.ContainsKey(begin.File) || open.Values.Any(f => f.Name == begin.Name) || received.Any(f => f.Name == begin.Name))
                        {
                            throw new ProtocolException($"{connection.Peer} sent a file '{begin.Name}' (id {begin.File}) that cannot be an image file here.");
                        }
                        if (++files > limits.MaxImageFiles)
                        {
                            Refuse(connection, $"it sent more than {limits.MaxImageFiles} image files, this server's limit for a dump");
                        }
                        if (open.Count >= PageServerLimits.MaxOpenFiles)
                        {
                            Refuse(connection, $"it kept more than {PageServerLimits.MaxOpenFiles} image files open at once ({string.Join(", ", open.Values.Take(3).Select(f => f.Name))}...)");
                        }
                        open[begin.File] = (begin.Name, Store(connection, transaction, begin.Name, () => transaction.Create(begin.Name)), 0);
                        digesters[begin.File] = new BlockDigester();
                        break;
                    case FrameType.FileData:
                        var (file, data) = PageServerMessages.ReadFileData(frame);
                        var target = File(open, file, connection);
                        bytes += (ulong)data.Length;
                        if (bytes > limits.MaxImageSize.Value)
                        {
                            Refuse(connection, $"it sent more than {limits.MaxImageSize.Value >> 20} MiB, this server's limit for a dump (in {target.Name})");
                        }
                        digesters[file].Append(data.Span);
                        Store(connection, transaction, target.Name, () => target.Stream.Write(data.Span));
                        open[file] = target with { Length = target.Length + data.Length };
                        server.Received(target.Name, data.Length);
                        break;
                    case FrameType.FileEnd:
                        var end = PageServerMessages.ReadFileEnd(frame);
                        var ended = File(open, end.File, connection);
                        if ((ulong)ended.Length != end.Length)
                        {
                            throw new ProtocolException($"{ended.Name} from {connection.Peer} ends after {ended.Length} bytes, but {end.Length} were sent.");
                        }
                        open.Remove(end.File);
                        Store(connection, transaction, ended.Name, ended.Stream.Dispose);
                        digesters.Remove(end.File, out var digester);
                        received.Add(digester!.Finish(ended.Name));
                        break;
                    case FrameType.Commit:
                        PageServerMessages.ReadEmpty(frame, FrameType.Commit);
                        RequireNoOpenFile(open, connection);
                        if (Damage(transaction.WorkPath, received) is { } damage)
                        {
                            transaction.Abort(); // nothing is kept by the time the client hears of it
                            PageServerMessages.Send(connection.Frames, new ErrorMessage(RefusalCode.Corrupt, damage));
                            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"The checkpoint {connection.Peer} sent was refused: {damage}", server.ImagePath);
                        }
                        Commit(transaction, connection, server);
                        PageServerMessages.SendCommitted(connection.Frames, transaction.FinalPath);
                        break;
                    case FrameType.Close:
                        PageServerMessages.ReadEmpty(frame, FrameType.Close);
                        RequireNoOpenFile(open, connection);
                        if (!transaction.Committed)
                        {
                            throw new ProtocolException($"{connection.Peer} closed the dump without committing it.");
                        }
                        PageServerMessages.SendEmpty(connection.Frames, FrameType.Goodbye);
                        return;
                    case FrameType.Error:
                        throw PeerRefusedException.From(frame);
                    default:
                        throw new ProtocolException($"{connection.Peer} sent {frame.Type} during a dump.");
                }
            }
        }
        catch
        {
            foreach (var (_, stream, _) in open.Values)
            {
                stream.Dispose();
            }
            // Before the commit nothing is kept; after it, the image stays as committed.
            transaction.Abort();
            throw;
        }
    }

    // Dumps received at once each have their own work directory; the first to commit is the image, and a later
    // one finds the image directory taken (a committed image is never replaced by a page server).
    private static void Commit(ImageDirectoryTransaction transaction, PageServerConnection connection, LazyPageServer server)
    {
        lock (server.CommitGate)
        {
            if (Directory.Exists(transaction.FinalPath) && Directory.EnumerateFileSystemEntries(transaction.FinalPath).Any())
            {
                transaction.Abort();
                Refuse(connection, $"the image directory '{transaction.FinalPath}' received another checkpoint meanwhile, which is final");
            }
            Store(connection, transaction, "the image", transaction.Commit);
        }
        server.Committed();
    }

    // Tells the client why the server ends the dump, then ends it (nothing of it is kept).
    private static void Refuse(PageServerConnection connection, string why)
    {
        Tell(connection, RefusalCode.Refused, why);
        throw new CheckpointException(CheckpointErrorKind.PageServerRefused, $"The dump from {connection.Peer} was refused: {why}.", connection.Peer);
    }

    // A file-system operation of the dump: its failure (a full disk, the directory removed) is the server's own, and
    // the client hears what failed rather than a connection that ends without a word.
    private static void Store(PageServerConnection connection, ImageDirectoryTransaction transaction, string file, Action operation) =>
        Store(connection, transaction, file, () =>
        {
            operation();
            return 0;
        });

    private static T Store<T>(PageServerConnection connection, ImageDirectoryTransaction transaction, string file, Func<T> operation)
    {
        try
        {
            return operation();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var why = $"it could not store {file} in {transaction.FinalPath}: {e.Message}";
            Tell(connection, RefusalCode.Failed, why);
            throw new CheckpointException(CheckpointErrorKind.ImagePathUnusable, $"The dump from {connection.Peer} failed on this server: {why}.", transaction.FinalPath, null, e);
        }
    }

    // Sends the Error frame; the session lingers on it once it has recorded why it ended (see LingerAfterError).
    private static void Tell(PageServerConnection connection, RefusalCode code, string why)
    {
        try
        {
            PageServerMessages.Send(connection.Frames, new ErrorMessage(code, $"this server ended the dump: {why}"));
            connection.ErrorSent = true;
        }
        catch (IOException)
        {
            // a client that does not read finds the connection closed instead
        }
    }

    /// <summary>
    /// What does not match between the files that arrived and the digests the client computed as it wrote them
    /// (criups-digests.img, received with them): a file damaged on its way, one missing or one not listed. Null when
    /// everything matches.
    /// </summary>
    internal static string? Damage(string directory, IReadOnlyList<FileDigest> received)
    {
        DigestManifest? manifest;
        try
        {
            manifest = DigestManifest.Read(directory);
        }
        catch (CheckpointException e) when (e.Kind == CheckpointErrorKind.ImageCorrupt)
        {
            return e.Message;
        }
        if (manifest is null)
        {
            return $"it came without {DigestManifest.FileName}, so what arrived cannot be verified (a client of protocol version {PageServerMessages.Version} always sends it)";
        }
        var problems = new List<string>();
        foreach (var file in received.Where(f => f.Name != DigestManifest.FileName))
        {
            if (!manifest.Files.TryGetValue(file.Name, out var sent))
            {
                problems.Add($"{file.Name} is not in the client's {DigestManifest.FileName}");
            }
            else if (sent.Difference(file) is { } difference)
            {
                problems.Add($"{file.Name} arrived {difference}");
            }
        }
        problems.AddRange(manifest.Files.Keys.Where(name => received.All(f => f.Name != name)).Select(name => $"{name} is listed but never arrived"));
        return problems.Count == 0 ? null : string.Join("; ", problems);
    }

    // Plain names as CRIU's images have (core-1.img, pages-2.img, stats-dump): nothing that leaves the directory.
    private static bool IsImageFileName(string name) =>
        name.Length is > 0 and <= 255 && name[0] != '.' && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    private static (string Name, Stream Stream, long Length) File(Dictionary<uint, (string Name, Stream Stream, long Length)> open, uint file, PageServerConnection connection) =>
        open.TryGetValue(file, out var entry) ? entry : throw new ProtocolException($"{connection.Peer} sent data for file id {file}, which is not open.");

    private static void RequireNoOpenFile(Dictionary<uint, (string Name, Stream Stream, long Length)> open, PageServerConnection connection)
    {
        if (open.Count > 0)
        {
            throw new ProtocolException($"{connection.Peer} ended the dump with {string.Join(", ", open.Values.Select(f => f.Name))} still open.");
        }
    }
}
