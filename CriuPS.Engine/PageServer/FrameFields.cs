using System.Buffers.Binary;
using System.Text;

namespace CriuPS.Engine.PageServer;

/// <summary>Builds the fixed fields of a frame: little-endian integers and u16-length-prefixed UTF-8 strings.</summary>
internal ref struct FrameFieldWriter
{
    /// <summary>The longest string a frame may carry, in bytes.</summary>
    public const int MaxString = 4096;

    private readonly Span<byte> buffer;
    private int length;

    public FrameFieldWriter(Span<byte> buffer)
    {
        this.buffer = buffer;
        length = 0;
    }

    public readonly ReadOnlySpan<byte> Written => buffer[..length];

    public void U8(byte value)
    {
        buffer[length++] = value;
    }

    public void U16(ushort value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(buffer[length..], value);
        length += 2;
    }

    public void U32(uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(buffer[length..], value);
        length += 4;
    }

    public void U64(ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(buffer[length..], value);
        length += 8;
    }

    public void String(string value)
    {
        int bytes = Encoding.UTF8.GetByteCount(value);
        if (bytes > MaxString)
        {
            throw new ArgumentException($"a string of {bytes} bytes is longer than a frame allows ({MaxString})");
        }
        U16((ushort)bytes);
        length += Encoding.UTF8.GetBytes(value, buffer[length..]);
    }
}

/// <summary>Reads the fields of a received frame, refusing a frame too short for what its type must hold.</summary>
internal ref struct FrameFieldReader
{
    private readonly ReadOnlySpan<byte> payload;
    private readonly FrameType type;
    private int position;

    public FrameFieldReader(Frame frame)
    {
        payload = frame.Payload.Span;
        type = frame.Type;
        position = 0;
    }

    /// <summary>The bytes after the fields read so far (the data of FileData and PageData).</summary>
    public readonly ReadOnlySpan<byte> Rest => payload[position..];

    public byte U8() => Take(1)[0];

    public ushort U16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));

    public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

    public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

    public string String()
    {
        int bytes = U16();
        if (bytes > FrameFieldWriter.MaxString)
        {
            throw new ProtocolException($"A {type} frame carries a string of {bytes} bytes (at most {FrameFieldWriter.MaxString}).");
        }
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(Take(bytes));
        }
        catch (DecoderFallbackException)
        {
            throw new ProtocolException($"A {type} frame carries a string that is not UTF-8.");
        }
    }

    /// <summary>Checks that nothing follows the fields of a frame that has no data.</summary>
    public readonly void End()
    {
        if (position != payload.Length)
        {
            throw new ProtocolException($"A {type} frame has {payload.Length - position} bytes more than its fields.");
        }
    }

    private ReadOnlySpan<byte> Take(int count)
    {
        if (payload.Length - position < count)
        {
            throw new ProtocolException($"A {type} frame of {payload.Length} bytes is too short for its fields.");
        }
        var span = payload.Slice(position, count);
        position += count;
        return span;
    }
}
