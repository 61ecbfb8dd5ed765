using System.Buffers.Binary;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// The addresses of AF_NETLINK sockets of this process (struct sockaddr_nl: a port id and a mask of the first 32
/// multicast groups), their full group memberships, and whether a message waits to be read.
/// </summary>
public static unsafe class NetlinkSocket
{
    private const int AddressLength = 12; // sa_family_t nl_family, unsigned short nl_pad, __u32 nl_pid, __u32 nl_groups

    /// <summary>getsockname(2): the port id it is bound to (0 when unbound) and the mask of groups 1-32 it joined.</summary>
    public static (uint PortId, uint Groups) Name(FileDescriptor socket) => Address(socket, peer: false);

    /// <summary>getpeername(2): the port id and group (as a one-bit mask) it is connected to; zeros when not connected.</summary>
    public static (uint PortId, uint Groups) Peer(FileDescriptor socket) => Address(socket, peer: true);

    private static (uint PortId, uint Groups) Address(FileDescriptor socket, bool peer)
    {
        byte* raw = stackalloc byte[AddressLength];
        socklen_t length = AddressLength;
        int result = peer ? LibC.getpeername(socket.Value, (sockaddr*)raw, &length) : LibC.getsockname(socket.Value, (sockaddr*)raw, &length);
        if (result != 0)
        {
            throw new NativeException(peer ? "getpeername(AF_NETLINK)" : "getsockname(AF_NETLINK)", LibC.errno);
        }
        var bytes = new ReadOnlySpan<byte>(raw, AddressLength);
        return (BinaryPrimitives.ReadUInt32LittleEndian(bytes[4..]), BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]));
    }

    /// <summary>bind(2) to a port id (0: the kernel picks one) and groups 1-32; returns 0 or the errno.</summary>
    public static int TryBind(FileDescriptor socket, uint portId, uint groups)
    {
        byte* raw = stackalloc byte[AddressLength];
        Encode(raw, portId, groups);
        return LibC.bind(socket.Value, (sockaddr*)raw, AddressLength) == 0 ? 0 : LibC.errno;
    }

    /// <summary>connect(2) to a port id and a group mask; returns 0 or the errno.</summary>
    public static int TryConnect(FileDescriptor socket, uint portId, uint groups)
    {
        byte* raw = stackalloc byte[AddressLength];
        Encode(raw, portId, groups);
        return LibC.connect(socket.Value, (sockaddr*)raw, AddressLength) == 0 ? 0 : LibC.errno;
    }

    private static void Encode(byte* raw, uint portId, uint groups)
    {
        var bytes = new Span<byte>(raw, AddressLength);
        bytes.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, (ushort)LibC.AF_NETLINK);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes[4..], portId);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes[8..], groups);
    }

    /// <summary>
    /// Every group the socket joined (NETLINK_LIST_MEMBERSHIPS), 32 to a word from group 1 up, without trailing empty
    /// words: by bind(2) or NETLINK_ADD_MEMBERSHIP, above group 32 too.
    /// </summary>
    public static uint[] Memberships(FileDescriptor socket)
    {
        var words = new uint[32];
        while (true)
        {
            socklen_t length = (uint)(words.Length * sizeof(uint));
            fixed (uint* p = words)
            {
                if (LibC.getsockopt(socket.Value, LibC.SOL_NETLINK, SocketOption.NETLINK_LIST_MEMBERSHIPS, p, &length) != 0)
                {
                    throw new NativeException("getsockopt(NETLINK_LIST_MEMBERSHIPS)", LibC.errno);
                }
            }
            // The kernel writes what fits and says how much there is.
            int needed = (int)(uint)length / sizeof(uint);
            if (needed <= words.Length)
            {
                int used = needed;
                while (used > 0 && words[used - 1] == 0)
                {
                    used--;
                }
                return words[..used];
            }
            words = new uint[needed];
        }
    }

    /// <summary>The length of the message waiting to be read first (peeked, not taken), or null when none waits.</summary>
    public static int? PendingMessageLength(FileDescriptor socket)
    {
        byte one;
        long length = LibC.recv(socket.Value, &one, 1, LibC.MSG_PEEK | LibC.MSG_TRUNC | LibC.MSG_DONTWAIT);
        if (length >= 0)
        {
            return (int)length;
        }
        int errno = LibC.errno;
        return errno == Errno.EAGAIN ? null : throw new NativeException("recv(MSG_PEEK)", errno);
    }
}
