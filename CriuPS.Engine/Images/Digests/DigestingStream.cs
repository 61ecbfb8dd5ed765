using System.Diagnostics;

namespace CriuPS.Engine.Images.Digests;

/// <summary>
/// A write-only stream that digests every byte on its way to the stream underneath, on the writing thread, or for
/// the pages beside it on a thread of the page writer's (<see cref="WriteWithoutDigest"/>, <see cref="Digest"/>): no
/// second pass over the file. Closing it closes the file, then hands the digest to the callback.
/// </summary>
internal sealed class DigestingStream : Stream
{
    private readonly Stream inner;
    private readonly string name;
    private readonly Action<FileDigest, TimeSpan> closed;
    private readonly BlockDigester digester = new();
    private long hashTicks;
    private bool disposed;

    /// <param name="closed">Gets the file's digest and the time spent digesting it, once the file is closed.</param>
    public DigestingStream(Stream inner, string name, Action<FileDigest, TimeSpan> closed)
    {
        this.inner = inner;
        this.name = name;
        this.closed = closed;
    }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => digester.Size;

    public override long Position
    {
        get => digester.Size;
        set => throw new NotSupportedException();
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Digest(buffer);
        inner.Write(buffer);
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <summary>
    /// Writes bytes that <see cref="Digest"/> digests, on another thread: the page writer's pages are hashed beside
    /// the write rather than in its way (see PageSink). Every byte must go through both, in the same order.
    /// </summary>
    public void WriteWithoutDigest(ReadOnlySpan<byte> buffer) => inner.Write(buffer);

    /// <summary>Digests the next bytes written with <see cref="WriteWithoutDigest"/> (one thread at a time).</summary>
    public void Digest(ReadOnlySpan<byte> buffer)
    {
        long start = Stopwatch.GetTimestamp();
        digester.Append(buffer);
        hashTicks += Stopwatch.GetTimestamp() - start;
    }

    public override void WriteByte(byte value) => Write([value]);

    public override void Flush() => inner.Flush();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !disposed)
        {
            disposed = true;
            // The file first: a digest is recorded only for a file written to the end.
            inner.Dispose();
            closed(digester.Finish(name), Stopwatch.GetElapsedTime(0, hashTicks));
        }
        base.Dispose(disposing);
    }
}
