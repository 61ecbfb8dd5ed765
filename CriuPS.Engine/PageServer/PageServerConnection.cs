using System.Net.Sockets;

namespace CriuPS.Engine.PageServer;

/// <summary>
/// One connection of the page server protocol, client or server side: the socket, the TLS stream when TLS is used,
/// and the frames. Every wait is bounded: a peer silent for <see cref="Timeout"/> is a lost connection.
/// </summary>
internal sealed class PageServerConnection : IDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly Socket socket;
    private readonly Stream stream;
    private readonly ReceiveDeadline? deadline;

    /// <summary>A connection; on the server, <paramref name="deadline"/> bounds how long the client may take.</summary>
    public PageServerConnection(Socket socket, Stream stream, string peer, ReceiveDeadline? deadline = null)
    {
        this.socket = socket;
        this.stream = stream;
        this.deadline = deadline;
        Peer = peer;
        Frames = new FrameStream(stream, deadline);
    }

    public FrameStream Frames { get; }

    /// <summary>Who is at the other end, for messages.</summary>
    public string Peer { get; }

    /// <summary>Sets the bound on every send and receive of a socket.</summary>
    public static void LimitWaits(Socket socket)
    {
        socket.ReceiveTimeout = (int)Timeout.TotalMilliseconds;
        socket.SendTimeout = (int)Timeout.TotalMilliseconds;
        socket.NoDelay = true;
    }

    /// <summary>The next frame; the connection ending here is an error.</summary>
    public Frame Receive()
    {
        try
        {
            return Frames.Read() ?? throw new ProtocolException($"{Peer} closed the connection.");
        }
        catch (Exception e) when (deadline?.Expired is { } late)
        {
            throw new ProtocolException($"{Peer} {late}, and was cut off.", e);
        }
    }

    /// <summary>The next frame, which must be of <paramref name="type"/>; an Error frame in its place throws <see cref="PeerRefusedException"/>.</summary>
    public Frame Expect(FrameType type)
    {
        var frame = Receive();
        if (frame.Type == FrameType.Error && type != FrameType.Error)
        {
            throw PeerRefusedException.From(frame);
        }
        if (frame.Type != type)
        {
            throw new ProtocolException($"{Peer} sent {frame.Type} where {type} was expected.");
        }
        return frame;
    }

    /// <summary>
    /// For the side that sends a stream of frames and reads only at its end (a dump's client): a frame waiting now
    /// can only be the peer's Error, sent as it ended the session (a refusal, a failure of its own). Throws it,
    /// rather than sending on into a connection the peer is closing, which ends in a reset that says nothing.
    /// </summary>
    public void ThrowIfPeerEnded()
    {
        if (socket.Available == 0)
        {
            return;
        }
        var frame = Receive();
        throw frame.Type == FrameType.Error ? PeerRefusedException.From(frame) : new ProtocolException($"{Peer} sent {frame.Type} while this side was sending.");
    }

    /// <summary>Whether this side sent an Error frame, after which it ends the session (see <see cref="LingerAfterError"/>).</summary>
    public bool ErrorSent { get; set; }

    /// <summary>
    /// After an Error frame sent to a peer that may still be sending (a dump's client streams its files and reads
    /// only at the commit): closing with its frames unread would make the kernel reset the connection, and the
    /// peer could lose the Error with it. So what still arrives is read and dropped until the peer closes or is quiet
    /// for a moment, for at most <see cref="LingerBytes"/> and <see cref="LingerTime"/> (a peer that does not stop
    /// is cut off then).
    /// </summary>
    public void LingerAfterError()
    {
        var scratch = new byte[64 << 10];
        long left = LingerBytes;
        long until = Environment.TickCount64 + (long)LingerTime.TotalMilliseconds;
        try
        {
            while (left > 0 && Environment.TickCount64 < until && socket.Poll(LingerPollMicroseconds, SelectMode.SelectRead))
            {
                int got = stream.Read(scratch);
                if (got == 0)
                {
                    return;
                }
                left -= got;
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // the peer reset the connection, or the server's deadline closed it: there is nothing left to wait for
        }
    }

    /// <summary>What a peer may send after an Error before it is cut off: the frames in flight in both sockets' buffers and one more.</summary>
    private const long LingerBytes = 16 << 20;

    private static readonly TimeSpan LingerTime = TimeSpan.FromSeconds(2);

    private const int LingerPollMicroseconds = 100_000;

    /// <summary>Closes at once: a blocked send or receive on another thread fails.</summary>
    public void Abort() => socket.Close(0);

    public void Dispose()
    {
        stream.Dispose();
        socket.Dispose();
    }
}

/// <summary>The peer answered with an Error frame.</summary>
internal sealed class PeerRefusedException : Exception
{
    public PeerRefusedException(RefusalCode code, string message)
        : base(message) => Code = code;

    /// <summary>The refusal an Error frame carries.</summary>
    public static PeerRefusedException From(Frame error)
    {
        var message = PageServerMessages.ReadError(error);
        return new PeerRefusedException(message.Code, message.Text);
    }

    public RefusalCode Code { get; }
}
