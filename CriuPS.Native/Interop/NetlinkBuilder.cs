using System.Buffers.Binary;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>Builds one netlink request: header, family header, then attributes, nested ones opened and closed in turn.</summary>
public sealed class NetlinkBuilder
{
    private readonly List<byte> bytes = new();
    private readonly Stack<int> nests = new();

    public NetlinkBuilder(ushort type, ushort flags, ReadOnlySpan<byte> familyHeader)
    {
        bytes.AddRange(new byte[NetlinkMessages.HeaderLength]);
        BinaryPrimitives.WriteUInt16LittleEndian(Span(4, 2), type);
        BinaryPrimitives.WriteUInt16LittleEndian(Span(6, 2), flags);
        Append(familyHeader);
    }

    public NetlinkBuilder Add(ushort type, ReadOnlySpan<byte> value)
    {
        var head = new byte[4];
        BinaryPrimitives.WriteUInt16LittleEndian(head, (ushort)(4 + value.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(head.AsSpan(2), type);
        Append(head);
        Append(value);
        return this;
    }

    public NetlinkBuilder Add(ushort type, string text) => Add(type, FileDescriptor.NullTerminated(text));

    public NetlinkBuilder Add(ushort type, uint value)
    {
        Span<byte> buffer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, value);
        return Add(type, buffer);
    }

    /// <summary>Opens a nested attribute: what follows until <see cref="End"/> is inside it.</summary>
    public NetlinkBuilder Begin(ushort type)
    {
        nests.Push(bytes.Count);
        return Add(type, ReadOnlySpan<byte>.Empty);
    }

    /// <summary>Appends raw bytes inside the current nest (a family header a nested message starts with).</summary>
    public NetlinkBuilder Append(ReadOnlySpan<byte> raw)
    {
        bytes.AddRange(raw.ToArray());
        while (bytes.Count % 4 != 0)
        {
            bytes.Add(0);
        }
        return this;
    }

    public NetlinkBuilder End()
    {
        int start = nests.Pop();
        BinaryPrimitives.WriteUInt16LittleEndian(Span(start, 2), (ushort)(bytes.Count - start));
        return this;
    }

    public byte[] ToArray()
    {
        var message = bytes.ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)message.Length);
        return message;
    }

    private Span<byte> Span(int offset, int length)
    {
        var array = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes);
        return array.Slice(offset, length);
    }
}
