using System.Buffers.Binary;
using System.Text;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// The netlink message layout every netlink family shares: a 16-byte header (length, type, flags, sequence, port),
/// a family header, then attributes (length, type, value, each padded to 4 bytes), which may nest.
/// </summary>
public static unsafe class NetlinkMessages
{
    public const int HeaderLength = 16;
    public const ushort NlmsgError = 2, NlmsgDone = 3;
    public const ushort NlmFRequest = 1, NlmFMulti = 2, NlmFAck = 4, NlmFDump = 0x300, NlmFExcl = 0x200, NlmFCreate = 0x400;
    private const ushort AttributeTypeMask = 0x3fff; // without NLA_F_NESTED and NLA_F_NET_BYTEORDER

    /// <summary>
    /// Walks the netlink messages of one datagram: each answer of <paramref name="sequence"/>, header included, goes to
    /// <paramref name="onMessage"/>; stops at NLMSG_DONE or NLMSG_ERROR (whose errno it returns: 0 for an
    /// acknowledgement). Messages of another sequence number (a stale answer) are skipped.
    /// </summary>
    public static (bool Done, int Errno) Walk(ReadOnlySpan<byte> datagram, uint sequence, string protocol, Action<ushort, ReadOnlySpan<byte>> onMessage)
    {
        int offset = 0;
        while (offset + HeaderLength <= datagram.Length)
        {
            int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(datagram[offset..]);
            if (length < HeaderLength || offset + length > datagram.Length)
            {
                throw new InvalidDataException($"{protocol}: a message claims {length} bytes at offset {offset} of a {datagram.Length}-byte answer");
            }
            ushort type = BinaryPrimitives.ReadUInt16LittleEndian(datagram[(offset + 4)..]);
            uint seq = BinaryPrimitives.ReadUInt32LittleEndian(datagram[(offset + 8)..]);
            var message = datagram.Slice(offset, length);
            offset += Align(length);
            if (seq != sequence)
            {
                continue;
            }
            switch (type)
            {
                case NlmsgDone:
                    return (true, 0);
                case NlmsgError:
                    return (true, length >= HeaderLength + 4 ? -BinaryPrimitives.ReadInt32LittleEndian(message[HeaderLength..]) : Errno.EIO);
                default:
                    onMessage(type, message);
                    break;
            }
        }
        return (false, 0);
    }

    /// <summary>
    /// Sends <paramref name="request"/> on the netlink <paramref name="socket"/> as message <paramref name="sequence"/>
    /// and hands each answering message (header included) to <paramref name="onMessage"/>: until NLMSG_DONE or
    /// NLMSG_ERROR when <paramref name="untilDone"/> (a dump, a request with an acknowledgement), else the first
    /// datagram only. Returns 0, or the errno the kernel answered with.
    /// </summary>
    public static int Exchange(FileDescriptor socket, byte[] request, uint sequence, string protocol, bool untilDone, Action<ushort, ReadOnlySpan<byte>> onMessage)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(8), sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(12), 0);
        fixed (byte* p = request)
        {
            if ((long)LibC.send(socket.Value, p, (size_t)(ulong)request.Length, 0) != request.Length)
            {
                throw new NativeException($"send to {protocol}", LibC.errno);
            }
        }
        var buffer = new byte[64 * 1024];
        while (true)
        {
            long received;
            fixed (byte* p = buffer)
            {
                received = (long)LibC.recv(socket.Value, p, (size_t)(ulong)buffer.Length, 0);
            }
            if (received < 0)
            {
                int errno = LibC.errno;
                if (errno == Errno.EINTR)
                {
                    continue;
                }
                throw new NativeException($"recv from {protocol}", errno);
            }
            var (done, error) = Walk(buffer.AsSpan(0, (int)received), sequence, protocol, onMessage);
            if (done || !untilDone)
            {
                return error;
            }
        }
    }

    public static int Align(int length) => (length + 3) & ~3;

    /// <summary>
    /// The attributes in <paramref name="span"/> by type (the first of each type); null when one claims more bytes
    /// than there are (a damaged message).
    /// </summary>
    public static Dictionary<ushort, byte[]>? Attributes(ReadOnlySpan<byte> span)
    {
        var attributes = new Dictionary<ushort, byte[]>();
        int offset = 0;
        while (offset + 4 <= span.Length)
        {
            int length = BinaryPrimitives.ReadUInt16LittleEndian(span[offset..]);
            ushort type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(span[(offset + 2)..]) & AttributeTypeMask);
            if (length < 4 || offset + length > span.Length)
            {
                return null;
            }
            attributes.TryAdd(type, span.Slice(offset + 4, length - 4).ToArray());
            offset += Align(length);
        }
        return attributes;
    }

    /// <summary>A NUL-terminated string attribute's text.</summary>
    public static string Text(byte[] value)
    {
        int end = Array.IndexOf(value, (byte)0);
        return Encoding.UTF8.GetString(value, 0, end < 0 ? value.Length : end);
    }
}
