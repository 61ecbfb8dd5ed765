using CriuPS.Engine.Images.Digests;
using CriuPS.Engine.Logging;

namespace CriuPS.Engine.Dump;

/// <summary>
/// An image output whose every file is digested as it is written (<see cref="DigestingStream"/>; the pages beside the
/// page writer, see PageSink): the one place a dump's files are hashed, whether they go to a directory or a page
/// server.
/// The commit first writes criups-digests.img, so a committed image always has its manifest; files written after
/// the commit (stats-dump) are not in it.
/// </summary>
internal sealed class DigestedImageOutput : IImageOutput
{
    private readonly IImageOutput inner;
    private readonly EngineLog log;
    private readonly List<FileDigest> digests = new();
    private readonly HashSet<string> open = new(StringComparer.Ordinal);
    private TimeSpan hashTime;
    private bool committed;

    public DigestedImageOutput(IImageOutput inner, EngineLog log)
    {
        this.inner = inner;
        this.log = log;
    }

    public string Location => inner.Location;

    public string LogPath => inner.LogPath;

    public Stream Create(string fileName)
    {
        var stream = inner.Create(fileName);
        if (committed)
        {
            return stream;
        }
        lock (digests)
        {
            open.Add(fileName);
        }
        return new DigestingStream(stream, fileName, Closed);
    }

    public void Commit()
    {
        lock (digests)
        {
            if (open.Count > 0)
            {
                // Every file of the image must be in the manifest: one still open would be left out.
                throw new InvalidOperationException($"image files still open at the commit: {string.Join(", ", open)}");
            }
            DigestManifest.Write(inner.Create(DigestManifest.FileName), DigestManifest.FileName, digests);
            log.Write($"{DigestManifest.FileName}: digests of {digests.Count} files ({digests.Sum(d => d.Size) >> 20} MiB), {hashTime.TotalMilliseconds:F1} ms of hashing");
        }
        inner.Commit();
        committed = true;
    }

    public void Finish() => inner.Finish();

    public string? Abort() => inner.Abort();

    // Called on the thread that closes the file (Pages.Copy closes the pages file once the sink has completed).
    private void Closed(FileDigest digest, TimeSpan time)
    {
        lock (digests)
        {
            open.Remove(digest.Name);
            digests.Add(digest);
            hashTime += time;
        }
    }
}
