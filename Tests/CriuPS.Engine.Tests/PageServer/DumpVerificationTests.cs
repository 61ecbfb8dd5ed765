using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Digests;
using CriuPS.Engine.PageServer;
using CriuPS.Engine.Tests.Digests;
using CriuPS.Engine.Tests.Images;

namespace CriuPS.Engine.Tests.PageServer;

/// <summary>
/// A page server receiving a dump digests each file as it arrives and commits only what matches the digests the
/// client sent (criups-digests.img): a client speaking the protocol sends files that do not.
/// </summary>
public sealed class DumpVerificationTests : IDisposable
{
    private readonly TempDirectory temp = new();
    private readonly LazyPageServer server;
    private readonly string image;

    public DumpVerificationTests()
    {
        image = temp.PathOf("received");
        server = LazyPageServer.Start(new PageServerOptions { ImagePath = image, Port = 0 });
    }

    public void Dispose()
    {
        server.Stop();
        temp.Dispose();
    }

    [Fact]
    public void FilesThatMatchTheirDigestsAreCommitted()
    {
        var core = DigestTests.RandomBytes(5000, 1);
        var pages = DigestTests.RandomBytes(3 << 20, 2);

        var committed = Send(new() { ["core-1.img"] = core, ["pages-1.img"] = pages }, DigestsOf(("core-1.img", core), ("pages-1.img", pages)));

        Assert.Equal(image, committed);
        Assert.Equal(pages, File.ReadAllBytes(Path.Combine(image, "pages-1.img")));
        Assert.Empty(ImageVerifier.Verify(image, deferPages: false).Problems);
    }

    [Fact]
    public void AFileDamagedOnItsWayIsRefusedAndNothingIsKept()
    {
        var pages = DigestTests.RandomBytes(3 << 20, 3);
        var digests = DigestsOf(("pages-1.img", pages));
        pages[(2 << 20) + 5] ^= 1; // after the client digested it

        var e = Assert.Throws<CheckpointException>(() => Send(new() { ["pages-1.img"] = pages }, digests));

        Assert.Equal(CheckpointErrorKind.ImageCorrupt, e.Kind);
        Assert.Contains("pages-1.img arrived damaged: bytes 2097152 to 3145727 (block 3 of 3)", e.Message, StringComparison.Ordinal);
        AssertNothingKept();
    }

    [Fact]
    public void AFileCutShortIsRefused()
    {
        var core = DigestTests.RandomBytes(5000, 4);

        var e = Assert.Throws<CheckpointException>(() => Send(new() { ["core-1.img"] = core[..4000] }, DigestsOf(("core-1.img", core))));

        Assert.Contains("core-1.img arrived truncated: 4000 bytes, but 5000 were written", e.Message, StringComparison.Ordinal);
        AssertNothingKept();
    }

    [Fact]
    public void FilesMissingFromTheDigestsOrFromWhatArrivedAreRefused()
    {
        var core = DigestTests.RandomBytes(100, 5);

        var e = Assert.Throws<CheckpointException>(() =>
            Send(new() { ["core-1.img"] = core, ["core-2.img"] = core }, DigestsOf(("core-1.img", core), ("mm-1.img", core))));

        Assert.Contains("core-2.img is not in the client's criups-digests.img", e.Message, StringComparison.Ordinal);
        Assert.Contains("mm-1.img is listed but never arrived", e.Message, StringComparison.Ordinal);
        AssertNothingKept();
    }

    [Fact]
    public void ADumpWithoutDigestsIsRefused()
    {
        var e = Assert.Throws<CheckpointException>(() => Send(new() { ["core-1.img"] = [1, 2, 3] }, digests: null));

        Assert.Equal(CheckpointErrorKind.ImageCorrupt, e.Kind);
        Assert.Contains("came without criups-digests.img", e.Message, StringComparison.Ordinal);
        AssertNothingKept();
    }

    private void AssertNothingKept()
    {
        Assert.False(Directory.Exists(image) && Directory.EnumerateFileSystemEntries(image).Any());
        Assert.Empty(Directory.EnumerateFileSystemEntries(temp.Path, ".received*"));
    }

    private static byte[] DigestsOf(params (string Name, byte[] Data)[] files)
    {
        var stream = new MemoryStream();
        DigestManifest.Write(stream, DigestManifest.FileName, files.Select(f => DigestTests.Digest(f.Name, f.Data)));
        return stream.ToArray();
    }

    // Speaks the dump side of the protocol as PageServerImageOutput does: each file in 1 MiB pieces, the digests
    // last, then Commit. Returns the committed directory; a refusal is the error the client reports.
    private string Send(Dictionary<string, byte[]> files, byte[]? digests)
    {
        var endpoint = new PageServerEndpoint { Host = "127.0.0.1", Port = server.Port };
        var (connection, _) = PageServerClient.Connect(endpoint, SessionPurpose.Dump, "", 1);
        using (connection)
        {
            try
            {
                uint id = 1;
                foreach (var (name, data) in digests is null ? files : files.Append(new(DigestManifest.FileName, digests)))
                {
                    PageServerMessages.Send(connection.Frames, new FileBegin(id, name));
                    for (int offset = 0; offset < data.Length; offset += 1 << 20)
                    {
                        PageServerMessages.SendFileData(connection.Frames, id, data.AsSpan(offset, Math.Min(1 << 20, data.Length - offset)));
                    }
                    PageServerMessages.Send(connection.Frames, new FileEnd(id++, (ulong)data.Length));
                }
                PageServerMessages.SendEmpty(connection.Frames, FrameType.Commit);
                var committed = PageServerMessages.ReadCommitted(connection.Expect(FrameType.Committed));
                PageServerMessages.SendEmpty(connection.Frames, FrameType.Close);
                connection.Expect(FrameType.Goodbye);
                return committed;
            }
            catch (Exception e)
            {
                throw PageServerClient.Lost(e, endpoint, 1);
            }
        }
    }
}
