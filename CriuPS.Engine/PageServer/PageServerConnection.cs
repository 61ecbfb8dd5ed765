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
            var error = PageServerMessages.ReadError(frame);
            throw new PeerRefusedException(error.Code, error.Text);
        }
        if (frame.Type != type)
        {
            throw new ProtocolException($"{Peer} sent {frame.Type} where {type} was expected.");
        }
        return frame;
    }

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

    public RefusalCode Code { get; }
}
