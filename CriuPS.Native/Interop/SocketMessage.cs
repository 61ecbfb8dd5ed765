using System.Buffers.Binary;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>recvmsg(2) and sendmsg(2) on sockets of this process; never blocking, never raising SIGPIPE.</summary>
public static unsafe class SocketMessage
{
    private const int ControlHeader = 16;

    // Room for the control messages of one message (CRIU's CMSG_MAX_SIZE): credentials, or a few descriptors.
    private const int ControlSpace = 1024;

    /// <summary>
    /// Copies the next message (at the socket's peek offset, when SO_PEEK_OFF is set) without taking it from the
    /// queue; null when nothing is queued. Descriptors passed with SCM_RIGHTS arrive here as new close-on-exec
    /// descriptors of this process: the caller closes them.
    /// </summary>
    public static PeekedMessage? Peek(FileDescriptor socket, Span<byte> data)
    {
        var name = new byte[Socket.MaxNameLength + 2];
        var control = new byte[ControlSpace];
        fixed (byte* d = data)
        fixed (byte* n = name)
        fixed (byte* c = control)
        {
            var vector = new iovec { iov_base = d, iov_len = (size_t)(ulong)data.Length };
            var header = new msghdr
            {
                msg_name = n,
                msg_namelen = (uint)name.Length,
                msg_iov = &vector,
                msg_iovlen = 1,
                msg_control = c,
                msg_controllen = (uint)control.Length,
            };
            long length = (long)LibC.recvmsg(socket.Value, &header, LibC.MSG_PEEK | LibC.MSG_DONTWAIT | LibC.MSG_CMSG_CLOEXEC);
            if (length < 0)
            {
                int errno = LibC.errno;
                return errno == Errno.EAGAIN ? null : throw new NativeException("recvmsg(MSG_PEEK)", errno);
            }
            int nameLength = Math.Max(0, (int)(uint)header.msg_namelen - 2);
            return new PeekedMessage((int)length, name.AsSpan(2, nameLength).ToArray(), ParseControl(control.AsSpan(0, (int)(uint)header.msg_controllen)), header.msg_flags);
        }
    }

    /// <summary>
    /// Copies bytes of a stream socket's queue without taking them (recv with MSG_PEEK); 0 when nothing is queued.
    /// A TCP socket in repair mode peeks at the queue TCP_REPAIR_QUEUE chose, its send queue included.
    /// </summary>
    public static int PeekBytes(FileDescriptor socket, Span<byte> data)
    {
        fixed (byte* d = data)
        {
            long length = (long)LibC.recv(socket.Value, d, (size_t)(ulong)data.Length, LibC.MSG_PEEK | LibC.MSG_DONTWAIT);
            if (length < 0)
            {
                int errno = LibC.errno;
                return errno == Errno.EAGAIN ? 0 : throw new NativeException("recv(MSG_PEEK)", errno);
            }
            return (int)length;
        }
    }

    /// <summary>
    /// How many bytes, from the peek offset of a unix stream socket, lie in whole segments (what each send queued)
    /// within the next <paramref name="length"/> bytes, without taking them. A peek copies segment after segment and
    /// glues segments together up to one that carries descriptors, whose descriptors it returns with them all: it
    /// cannot tell where that last segment begins. Here the buffer ends at a page that cannot be written, so the
    /// kernel stops with EFAULT at the first segment that does not fit before it, before it looks at its
    /// descriptors, and reports only the segments copied whole.
    /// </summary>
    public static int PeekWholeSegments(FileDescriptor socket, int length)
    {
        const int Page = 4096;
        int dataPages = (length + Page - 1) / Page;
        ulong mapped = (ulong)(dataPages + 1) * Page;
        ulong area = Mmap.PrivateAnonymous(mapped);
        try
        {
            if (LibC.mprotect((void*)(area + (ulong)dataPages * Page), Page, (int)Mman.PROT_NONE) != 0)
            {
                throw new NativeException("mprotect(PROT_NONE)", LibC.errno);
            }
            var control = new byte[ControlSpace];
            fixed (byte* c = control)
            {
                // Longer than what is mapped: the segment that crosses into the guard page faults instead of being cut.
                var vector = new iovec { iov_base = (void*)(area + (ulong)dataPages * Page - (ulong)length), iov_len = (size_t)(ulong)(length + Page) };
                var header = new msghdr { msg_iov = &vector, msg_iovlen = 1, msg_control = c, msg_controllen = (uint)control.Length };
                long copied = (long)LibC.recvmsg(socket.Value, &header, LibC.MSG_PEEK | LibC.MSG_DONTWAIT | LibC.MSG_CMSG_CLOEXEC);
                if (copied < 0)
                {
                    int errno = LibC.errno;
                    return errno is Errno.EFAULT or Errno.EAGAIN ? 0 : throw new NativeException("recvmsg(MSG_PEEK)", errno);
                }
                CloseRights(ParseControl(control.AsSpan(0, (int)(uint)header.msg_controllen)));
                return (int)Math.Min(copied, length);
            }
        }
        finally
        {
            Mmap.Munmap(area, mapped);
        }
    }

    /// <summary>Closes the descriptors that SCM_RIGHTS messages brought into this process.</summary>
    public static void CloseRights(IEnumerable<ControlMessage> control)
    {
        foreach (var fd in control.Where(c => c.Type == LibC.SCM_RIGHTS).SelectMany(c => c.Descriptors()))
        {
            LibC.close(fd);
        }
    }

    /// <summary>The control messages in a msg_control buffer as the kernel filled it.</summary>
    public static List<ControlMessage> ParseControl(ReadOnlySpan<byte> control)
    {
        var messages = new List<ControlMessage>();
        int offset = 0;
        while (offset + ControlHeader <= control.Length)
        {
            int length = (int)BinaryPrimitives.ReadUInt64LittleEndian(control[offset..]);
            if (length < ControlHeader || offset + length > control.Length)
            {
                break;
            }
            int level = BinaryPrimitives.ReadInt32LittleEndian(control[(offset + 8)..]);
            int type = BinaryPrimitives.ReadInt32LittleEndian(control[(offset + 12)..]);
            messages.Add(new ControlMessage(level, type, control.Slice(offset + ControlHeader, length - ControlHeader).ToArray()));
            offset += (length + 7) & ~7;
        }
        return messages;
    }

    /// <summary>Sends one datagram or raw packet to an IPv4 or IPv6 address; returns the bytes sent or -errno.</summary>
    public static long TrySendTo(FileDescriptor socket, ReadOnlySpan<byte> data, System.Net.IPEndPoint to)
    {
        Span<byte> address = stackalloc byte[Socket.InetAddressLength];
        int length = Socket.Encode(to, address);
        fixed (byte* d = data)
        fixed (byte* a = address)
        {
            long sent = (long)LibC.sendto(socket.Value, d, (size_t)(ulong)data.Length, LibC.MSG_DONTWAIT | LibC.MSG_NOSIGNAL, (sockaddr*)a, (uint)length);
            return sent >= 0 ? sent : -LibC.errno;
        }
    }

    /// <summary>
    /// Sends one message (to <paramref name="to"/>, or to the connected peer when empty), with <paramref name="rights"/>
    /// passed along it (SCM_RIGHTS) when there are any; returns the bytes sent or -errno.
    /// </summary>
    public static long TrySend(FileDescriptor socket, ReadOnlySpan<byte> data, ReadOnlySpan<byte> to, ReadOnlySpan<int> rights = default)
    {
        socklen_t length = 0;
        var address = to.IsEmpty ? default : Socket.Address(to, out length);
        int controlLength = rights.IsEmpty ? 0 : ControlHeader + ((rights.Length * 4 + 7) & ~7);
        var control = new byte[controlLength];
        if (controlLength > 0)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(control, (ulong)(ControlHeader + rights.Length * 4));
            BinaryPrimitives.WriteInt32LittleEndian(control.AsSpan(8), 1); // SOL_SOCKET
            BinaryPrimitives.WriteInt32LittleEndian(control.AsSpan(12), LibC.SCM_RIGHTS);
            for (int i = 0; i < rights.Length; i++)
            {
                BinaryPrimitives.WriteInt32LittleEndian(control.AsSpan(ControlHeader + i * 4), rights[i]);
            }
        }
        fixed (byte* d = data)
        fixed (byte* c = control)
        {
            var vector = new iovec { iov_base = d, iov_len = (size_t)(ulong)data.Length };
            var header = new msghdr
            {
                msg_name = to.IsEmpty ? null : &address,
                msg_namelen = length,
                msg_iov = &vector,
                msg_iovlen = 1,
                msg_control = controlLength > 0 ? c : null,
                msg_controllen = (uint)controlLength,
            };
            long sent = (long)LibC.sendmsg(socket.Value, &header, LibC.MSG_DONTWAIT | LibC.MSG_NOSIGNAL);
            return sent >= 0 ? sent : -LibC.errno;
        }
    }
}
