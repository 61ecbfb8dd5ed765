using System.Buffers.Binary;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>AF_PACKET sockets (packet(7)): their SOL_PACKET options, and bind to an interface.</summary>
public static unsafe class PacketSocket
{
    // The family, level and options are Tmds.LibC's (LibC.AF_PACKET, LibC.SOL_PACKET, LibC.PACKET_VERSION...).

    /// <summary>The most bytes of a link-layer address a membership holds (MAX_ADDR_LEN).</summary>
    public const int MaxAddressLength = 32;

    /// <summary>
    /// Binds to the interface <paramref name="interfaceIndex"/> (0: every interface), keeping the protocol the socket
    /// was created with (a sockaddr_ll with protocol 0); returns 0 or the errno.
    /// </summary>
    public static int TryBind(FileDescriptor socket, int interfaceIndex)
    {
        Span<byte> address = stackalloc byte[20];
        address.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(address, (ushort)LibC.AF_PACKET);
        BinaryPrimitives.WriteInt32LittleEndian(address[4..], interfaceIndex);
        fixed (byte* p = address)
        {
            return LibC.bind(socket.Value, (sockaddr*)p, (uint)address.Length) == 0 ? 0 : LibC.errno;
        }
    }

    /// <summary>A struct packet_mreq as PACKET_ADD_MEMBERSHIP takes it (with room for the longest address).</summary>
    public static byte[] Membership(int interfaceIndex, ushort type, ReadOnlySpan<byte> address)
    {
        var request = new byte[8 + MaxAddressLength];
        BinaryPrimitives.WriteInt32LittleEndian(request, interfaceIndex);
        BinaryPrimitives.WriteUInt16LittleEndian(request.AsSpan(4), type);
        BinaryPrimitives.WriteUInt16LittleEndian(request.AsSpan(6), (ushort)address.Length);
        address.CopyTo(request.AsSpan(8));
        return request;
    }

    /// <summary>A struct tpacket_req3 as PACKET_RX_RING and PACKET_TX_RING take it (the first four words make a tpacket_req).</summary>
    public static byte[] Ring(uint blockSize, uint blockCount, uint frameSize, uint frameCount, uint retireTimeout, uint privateSize, uint features)
    {
        var request = new byte[28];
        uint[] words = [blockSize, blockCount, frameSize, frameCount, retireTimeout, privateSize, features];
        for (int i = 0; i < words.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(i * 4), words[i]);
        }
        return request;
    }
}
