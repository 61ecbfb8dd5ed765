using System.Buffers.Binary;

namespace CriuPS.Engine.PageServer;

/// <summary>One received frame: its type and its payload (valid until the next frame is read).</summary>
internal readonly record struct Frame(FrameType Type, ReadOnlyMemory<byte> Payload);

/// <summary>
/// The framing of the page server protocol over a byte stream: each frame is a little-endian u32 length, then that
/// many bytes, the first of which is the frame's type and the rest its payload. Frames are at most
/// <see cref="MaxFrame"/> bytes: a larger length is garbage, not a reason to allocate.
/// </summary>
internal sealed class FrameStream
{
    /// <summary>Type byte and payload: room for 4 MiB of pages and their header.</summary>
    public const int MaxFrame = (4 << 20) + 64;

    private const int HeaderSize = sizeof(uint);

    // A TLS record starts 0x16 0x03 (handshake, version 3.x): as a length that is over 50 MiB, never a frame.
    private const byte TlsHandshakeRecord = 0x16;
    private const byte TlsMajorVersion = 0x03;

    private readonly Stream stream;
    private byte[] receive = new byte[64 << 10];
    private byte[] send = new byte[64 << 10];

    private readonly ReceiveDeadline? deadline;

    /// <summary>A stream of frames; on the server, <paramref name="deadline"/> bounds how long each is waited for.</summary>
    public FrameStream(Stream stream, ReceiveDeadline? deadline = null)
    {
        this.stream = stream;
        this.deadline = deadline;
    }

    /// <summary>
    /// The largest frame accepted: <see cref="MaxFrame"/>, less where only small frames are expected (a server
    /// allocates no megabytes for a client that has not said Hello).
    /// </summary>
    public int Limit { get; set; } = MaxFrame;

    /// <summary>Reads the next frame; null when the stream ends cleanly between frames.</summary>
    public Frame? Read()
    {
        Span<byte> header = stackalloc byte[HeaderSize];
        deadline?.BetweenFrames();
        int got = stream.Read(header);
        if (got == 0)
        {
            return null;
        }
        deadline?.FrameBegun();
        got += ReadAtMost(header[got..]);
        if (got < HeaderSize)
        {
            throw new ProtocolException($"The connection ended inside a frame header ({got} of {HeaderSize} bytes).");
        }
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(header);
        if (header[0] == TlsHandshakeRecord && header[1] == TlsMajorVersion)
        {
            throw new ProtocolException("The peer started a TLS handshake, but this end does not use TLS.");
        }
        if (length == 0 || length > Limit)
        {
            throw new ProtocolException($"A frame of {length} bytes is not valid here (1 to {Limit}): this is not a CriuPS page server peer, or the stream is corrupt.");
        }
        if (receive.Length < length)
        {
            receive = new byte[Math.Max(length, (uint)receive.Length * 2)];
        }
        var body = receive.AsSpan(0, (int)length);
        got = ReadAtMost(body);
        if (got < length)
        {
            throw new ProtocolException($"The connection ended inside a frame ({got} of {length} bytes).");
        }
        deadline?.FrameEnded();
        var type = (FrameType)body[0];
        if (!Enum.IsDefined(type))
        {
            throw new ProtocolException($"Unknown frame type {body[0]}.");
        }
        return new Frame(type, receive.AsMemory(1, (int)length - 1));
    }

    /// <summary>Writes a frame whose payload is <paramref name="fields"/> followed by <paramref name="data"/>.</summary>
    public void Write(FrameType type, ReadOnlySpan<byte> fields, ReadOnlySpan<byte> data = default)
    {
        int length = 1 + fields.Length + data.Length;
        if (length > MaxFrame)
        {
            throw new ArgumentException($"a {type} frame of {length} bytes is larger than the protocol allows ({MaxFrame})");
        }
        int total = HeaderSize + length;
        if (send.Length < total)
        {
            send = new byte[Math.Max(total, send.Length * 2)];
        }
        // One write per frame: over TLS, one record instead of three.
        BinaryPrimitives.WriteUInt32LittleEndian(send, (uint)length);
        send[HeaderSize] = (byte)type;
        fields.CopyTo(send.AsSpan(HeaderSize + 1));
        data.CopyTo(send.AsSpan(HeaderSize + 1 + fields.Length));
        stream.Write(send, 0, total);
        stream.Flush();
    }

    private int ReadAtMost(Span<byte> into)
    {
        int done = 0;
        while (done < into.Length)
        {
            int n = stream.Read(into[done..]);
            if (n == 0)
            {
                break;
            }
            done += n;
        }
        return done;
    }
}
