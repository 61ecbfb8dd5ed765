using CriuPS.Engine.Dump;

namespace CriuPS.Engine.PageServer;

/// <summary>
/// A dump's output streamed to a page server: every image file goes over the connection as it is written
/// (the pages as they are copied out of the frozen process), and the server commits them into its image directory
/// with the same all-or-nothing treatment as a local dump. Nothing but dump.log is written on this machine: it stays
/// in the temporary directory (it holds no memory contents), and so does stats-dump, which is written after the
/// commit: the server takes nothing after it (a committed image is final, whoever the client). If the connection
/// breaks before the commit, the server removes what it received.
/// </summary>
internal sealed class PageServerImageOutput : IImageOutput
{
    private const int ChunkBytes = 1 << 20;

    private readonly PageServerEndpoint endpoint;
    private readonly PageServerConnection connection;
    private readonly int pid;
    private uint nextFile = 1;
    private bool broken;
    private bool committed;
    private bool damageNextPages; // test hook: FailurePoint.DamageInFlight
    private CancellationTokenRegistration cancelled;

    private PageServerImageOutput(PageServerEndpoint endpoint, PageServerConnection connection, string location, int pid)
    {
        this.endpoint = endpoint;
        this.connection = connection;
        this.pid = pid;
        Location = location;
        LogPath = Path.Combine(Path.GetTempPath(), $"criups-dump-{pid}-{DateTime.Now:yyyyMMdd-HHmmss}.log");
    }

    /// <summary>The image directory on the server (as it will be once committed).</summary>
    public string Location { get; private set; }

    public string LogPath { get; }

    /// <summary>Bytes of image files sent.</summary>
    public long BytesSent { get; private set; }

    /// <summary>
    /// Connects to the server for a dump of <paramref name="pid"/>; the server's image directory must be free.
    /// Cancelling breaks the connection at once, rather than after a send that waits on the network.
    /// </summary>
    public static PageServerImageOutput Open(PageServerEndpoint endpoint, int pid, CancellationToken cancellation, string? failAt = null)
    {
        var (connection, welcome) = PageServerClient.Connect(endpoint, SessionPurpose.Dump, "", pid);
        var output = new PageServerImageOutput(endpoint, connection, welcome.ImagePath, pid)
        {
            damageNextPages = FailurePoint.Is(failAt, FailurePoint.DamageInFlight),
        };
        output.cancelled = cancellation.Register(connection.Abort);
        return output;
    }

    public Stream Create(string fileName)
    {
        if (committed)
        {
            return new FileStream(LocalPath(fileName), new FileStreamOptions
            {
                Mode = FileMode.Create,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
        }
        uint file = nextFile++;
        Send(frames => PageServerMessages.Send(frames, new FileBegin(file, fileName)));
        bool damage = damageNextPages && Images.ImageTypes.Pages.MatchesFileName(fileName);
        damageNextPages &= !damage;
        return new Upload(this, file, damage);
    }

    public void Commit()
    {
        Location = Guard(() =>
        {
            PageServerMessages.SendEmpty(connection.Frames, FrameType.Commit);
            return PageServerMessages.ReadCommitted(connection.Expect(FrameType.Committed));
        });
        committed = true;
    }

    /// <summary>Where a file written after the commit (stats-dump) is kept: beside dump.log.</summary>
    private string LocalPath(string fileName) => Path.ChangeExtension(LogPath, null) + "-" + fileName;

    public void Finish()
    {
        try
        {
            Guard(() =>
            {
                PageServerMessages.SendEmpty(connection.Frames, FrameType.Close);
                return connection.Expect(FrameType.Goodbye);
            });
        }
        finally
        {
            cancelled.Dispose();
            connection.Dispose();
        }
    }

    public string? Abort()
    {
        broken = true;
        cancelled.Dispose();
        connection.Dispose(); // the server sees the connection end before a commit, and removes the upload
        return LogPath;
    }

    // A frame of the files, which the server does not answer: anything it sent meanwhile is why it ended the dump,
    // read at once. (The commit and the close, which it answers, send and read in one exchange.)
    private void Send(Action<FrameStream> send) => Guard(() =>
    {
        send(connection.Frames);
        connection.ThrowIfPeerEnded();
        return 0;
    });

    private T Guard<T>(Func<T> exchange)
    {
        if (broken)
        {
            throw new InvalidOperationException($"the connection to the {endpoint.Description} is closed");
        }
        try
        {
            return exchange();
        }
        catch (Exception e)
        {
            broken = true;
            throw PageServerClient.Lost(e, endpoint, pid);
        }
    }

    /// <summary>One image file on its way: buffered into 1 MiB FileData frames, ended by FileEnd.</summary>
    private sealed class Upload : Stream
    {
        private readonly PageServerImageOutput output;
        private readonly uint file;
        private readonly byte[] buffer = new byte[ChunkBytes];
        private int buffered;
        private long length;
        private bool closed;
        private bool damage;

        public Upload(PageServerImageOutput output, uint file, bool damage)
        {
            this.output = output;
            this.file = file;
            this.damage = damage;
        }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => length;

        public override long Position
        {
            get => length;
            set => throw new NotSupportedException();
        }

        public override void Write(ReadOnlySpan<byte> data)
        {
            while (data.Length > 0)
            {
                int n = Math.Min(data.Length, buffer.Length - buffered);
                data[..n].CopyTo(buffer.AsSpan(buffered));
                buffered += n;
                length += n;
                data = data[n..];
                if (buffered == buffer.Length)
                {
                    Flush();
                }
            }
        }

        public override void Write(byte[] data, int offset, int count) => Write(data.AsSpan(offset, count));

        public override void Flush()
        {
            if (buffered > 0)
            {
                int n = buffered;
                buffered = 0;
                if (damage)
                {
                    buffer[n / 2] ^= 0x01; // one bit, once, in the middle of the first chunk
                    damage = false;
                }
                output.Send(frames => PageServerMessages.SendFileData(frames, file, buffer.AsSpan(0, n)));
                output.BytesSent += n;
            }
        }

        protected override void Dispose(bool disposing)
        {
            // After a failure the dump is being undone: nothing more is sent (and nothing thrown over the first error).
            if (disposing && !closed && !output.broken)
            {
                closed = true;
                Flush();
                output.Send(frames => PageServerMessages.Send(frames, new FileEnd(file, (ulong)length)));
            }
            base.Dispose(disposing);
        }

        public override int Read(byte[] data, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
