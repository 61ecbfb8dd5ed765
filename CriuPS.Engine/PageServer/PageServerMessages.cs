using CriuPS.Native.Memory;

namespace CriuPS.Engine.PageServer;

/// <summary>A client's opening: the protocol magic and version, what it comes for, and the image it expects.</summary>
/// <param name="ImageId">For pages: the image's run id (inventory.img's dump_criu_run_id), so that a server holding
/// another checkpoint refuses instead of serving the wrong memory. Empty for a dump.</param>
internal sealed record Hello(ushort Version, SessionPurpose Purpose, string ImageId);

/// <summary>The server's acceptance: its version and its image directory.</summary>
internal sealed record Welcome(ushort Version, string ImagePath);

/// <summary>A refusal or failure, with a message for the user.</summary>
internal sealed record ErrorMessage(RefusalCode Code, string Text);

internal sealed record FileBegin(uint File, string Name);

internal sealed record FileEnd(uint File, ulong Length);

internal sealed record PageRequest(uint Pid, ulong Address, uint Pages);

/// <summary>The message of each frame type, and their encoding (see <see cref="FrameType"/> for the sessions).</summary>
internal static class PageServerMessages
{
    /// <summary>The first bytes of a Hello: "CRPS".</summary>
    public static ReadOnlySpan<byte> Magic => "CRPS"u8;

    /// <summary>
    /// 2: a dump carries criups-digests.img, which the server verifies before it commits; RefusalCode.Corrupt.
    /// 3: nothing follows the commit but Close (a version 2 client sent stats-dump after it, which a server now
    /// refuses: the version says so at the Hello instead).
    /// </summary>
    public const ushort Version = 3;

    // Room for a frame's fixed fields: a few integers and at most one string.
    private const int FieldRoom = 16 + 2 + FrameFieldWriter.MaxString;

    private delegate void Fields(ref FrameFieldWriter writer);

    private delegate T Parse<T>(ref FrameFieldReader reader);

    public static void Send(FrameStream frames, Hello hello) => Write(frames, FrameType.Hello, (ref FrameFieldWriter w) =>
    {
        foreach (byte b in Magic)
        {
            w.U8(b);
        }
        w.U16(hello.Version);
        w.U8((byte)hello.Purpose);
        w.String(hello.ImageId);
    });

    public static Hello ReadHello(Frame frame)
    {
        var hello = Read(frame, FrameType.Hello, (ref FrameFieldReader r) =>
        {
            foreach (byte b in Magic)
            {
                if (r.U8() != b)
                {
                    throw new ProtocolException("The peer's first frame is not a CriuPS page server Hello.");
                }
            }
            return new Hello(r.U16(), (SessionPurpose)r.U8(), r.String());
        });
        if (!Enum.IsDefined(hello.Purpose))
        {
            throw new ProtocolException($"A Hello asks for purpose {(byte)hello.Purpose}, which this server does not know.");
        }
        return hello;
    }

    public static void Send(FrameStream frames, Welcome welcome) => Write(frames, FrameType.Welcome, (ref FrameFieldWriter w) =>
    {
        w.U16(welcome.Version);
        w.String(welcome.ImagePath);
    });

    public static Welcome ReadWelcome(Frame frame) => Read(frame, FrameType.Welcome, (ref FrameFieldReader r) => new Welcome(r.U16(), r.String()));

    public static void Send(FrameStream frames, ErrorMessage error) => Write(frames, FrameType.Error, (ref FrameFieldWriter w) =>
    {
        w.U8((byte)error.Code);
        w.String(error.Text.Length > 1000 ? error.Text[..1000] : error.Text);
    });

    public static ErrorMessage ReadError(Frame frame) => Read(frame, FrameType.Error, (ref FrameFieldReader r) => new ErrorMessage((RefusalCode)r.U8(), r.String()));

    public static void Send(FrameStream frames, FileBegin begin) => Write(frames, FrameType.FileBegin, (ref FrameFieldWriter w) =>
    {
        w.U32(begin.File);
        w.String(begin.Name);
    });

    public static FileBegin ReadFileBegin(Frame frame) => Read(frame, FrameType.FileBegin, (ref FrameFieldReader r) => new FileBegin(r.U32(), r.String()));

    /// <summary>A piece of a file's contents.</summary>
    public static void SendFileData(FrameStream frames, uint file, ReadOnlySpan<byte> data)
    {
        var w = new FrameFieldWriter(stackalloc byte[4]);
        w.U32(file);
        frames.Write(FrameType.FileData, w.Written, data);
    }

    public static (uint File, ReadOnlyMemory<byte> Data) ReadFileData(Frame frame)
    {
        var r = Reader(frame, FrameType.FileData);
        return (r.U32(), frame.Payload[4..]);
    }

    public static void Send(FrameStream frames, FileEnd end) => Write(frames, FrameType.FileEnd, (ref FrameFieldWriter w) =>
    {
        w.U32(end.File);
        w.U64(end.Length);
    });

    public static FileEnd ReadFileEnd(Frame frame) => Read(frame, FrameType.FileEnd, (ref FrameFieldReader r) => new FileEnd(r.U32(), r.U64()));

    /// <summary>Committed carries the image directory the server renamed the upload to.</summary>
    public static void SendCommitted(FrameStream frames, string imagePath) =>
        Write(frames, FrameType.Committed, (ref FrameFieldWriter w) => w.String(imagePath));

    public static string ReadCommitted(Frame frame) => Read(frame, FrameType.Committed, (ref FrameFieldReader r) => r.String());

    public static void Send(FrameStream frames, PageRequest request) => Write(frames, FrameType.PageRequest, (ref FrameFieldWriter w) =>
    {
        w.U32(request.Pid);
        w.U64(request.Address);
        w.U32(request.Pages);
    });

    /// <summary>The most pages one request may ask for (the protocol's frames hold 4 MiB).</summary>
    public const uint MaxPagesPerRequest = 1024;

    /// <summary>A page request, which must ask for 1 to <see cref="MaxPagesPerRequest"/> pages from a page boundary.</summary>
    public static PageRequest ReadPageRequest(Frame frame)
    {
        var request = Read(frame, FrameType.PageRequest, (ref FrameFieldReader r) => new PageRequest(r.U32(), r.U64(), r.U32()));
        if (request.Pages is 0 or > MaxPagesPerRequest || (request.Address & (Page.Size - 1)) != 0)
        {
            throw new ProtocolException($"A request for {request.Pages} pages at 0x{request.Address:x} is not valid.");
        }
        return request;
    }

    /// <summary>The pages of a request: its process and address, then the bytes.</summary>
    public static void SendPageData(FrameStream frames, uint pid, ulong address, ReadOnlySpan<byte> data)
    {
        var w = new FrameFieldWriter(stackalloc byte[12]);
        w.U32(pid);
        w.U64(address);
        frames.Write(FrameType.PageData, w.Written, data);
    }

    public static (uint Pid, ulong Address, ReadOnlyMemory<byte> Data) ReadPageData(Frame frame)
    {
        var r = Reader(frame, FrameType.PageData);
        return (r.U32(), r.U64(), frame.Payload[12..]);
    }

    /// <summary>Done carries the number of pages the restore received.</summary>
    public static void SendDone(FrameStream frames, ulong pages) => Write(frames, FrameType.Done, (ref FrameFieldWriter w) => w.U64(pages));

    public static ulong ReadDone(Frame frame) => Read(frame, FrameType.Done, (ref FrameFieldReader r) => r.U64());

    /// <summary>Commit, Close and Goodbye carry nothing.</summary>
    public static void SendEmpty(FrameStream frames, FrameType type) => frames.Write(type, ReadOnlySpan<byte>.Empty);

    public static void ReadEmpty(Frame frame, FrameType type) => Reader(frame, type).End();

    private static void Write(FrameStream frames, FrameType type, Fields fields)
    {
        var w = new FrameFieldWriter(stackalloc byte[FieldRoom]);
        fields(ref w);
        frames.Write(type, w.Written);
    }

    // Parses a frame that holds fields only: anything left over is an error.
    private static T Read<T>(Frame frame, FrameType type, Parse<T> parse)
    {
        var r = Reader(frame, type);
        var message = parse(ref r);
        r.End();
        return message;
    }

    private static FrameFieldReader Reader(Frame frame, FrameType expected)
    {
        if (frame.Type != expected)
        {
            throw new ProtocolException($"Expected a {expected} frame, got {frame.Type}.");
        }
        return new FrameFieldReader(frame);
    }
}
