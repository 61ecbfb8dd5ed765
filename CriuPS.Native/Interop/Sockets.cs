using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>The socket calls that tell whether sockets can be checkpointed: TCP repair mode and netlink requests.</summary>
public static unsafe class Sockets
{
    /// <summary>Whether a fresh TCP socket accepts TCP_REPAIR (needs CAP_NET_ADMIN): 0, or the errno of the failing call.</summary>
    public static int TryTcpRepair(out string failedCall)
    {
        int fd = LibC.socket(LibC.AF_INET, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, LibC.IPPROTO_TCP);
        if (fd < 0)
        {
            failedCall = "socket(AF_INET, SOCK_STREAM)";
            return LibC.errno;
        }
        try
        {
            int on = 1;
            failedCall = "setsockopt(TCP_REPAIR)";
            return LibC.setsockopt(fd, LibC.IPPROTO_TCP, LibC.TCP_REPAIR, &on, sizeof(int)) < 0 ? LibC.errno : 0;
        }
        finally
        {
            LibC.close(fd);
        }
    }

    /// <summary>
    /// Sends one netlink request to the kernel and reads the first reply, waiting at most <paramref name="timeout"/>.
    /// </summary>
    public static NetlinkAnswer NetlinkRequest(int protocol, ushort type, ushort flags, ReadOnlySpan<byte> body, TimeSpan timeout)
    {
        int fd = LibC.socket(LibC.AF_NETLINK, LibC.SOCK_RAW | LibC.SOCK_CLOEXEC, protocol);
        if (fd < 0)
        {
            return NetlinkAnswer.Failed($"socket(AF_NETLINK, {protocol})", LibC.errno);
        }
        try
        {
            var wait = new TimeVal { Seconds = (long)timeout.TotalSeconds, Microseconds = timeout.Microseconds };
            LibC.setsockopt(fd, LibC.SOL_SOCKET, LibC.SO_RCVTIMEO, &wait, (uint)sizeof(TimeVal));
            var request = new byte[NetlinkMessages.HeaderLength + body.Length];
            BinaryPrimitives.WriteUInt32LittleEndian(request, (uint)request.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(request.AsSpan(4), type);
            BinaryPrimitives.WriteUInt16LittleEndian(request.AsSpan(6), flags);
            BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(8), 1); // sequence number
            body.CopyTo(request.AsSpan(NetlinkMessages.HeaderLength));
            fixed (byte* r = request)
            {
                if ((long)LibC.send(fd, r, request.Length, 0) < 0)
                {
                    return NetlinkAnswer.Failed("send(netlink request)", LibC.errno);
                }
            }
            var reply = new byte[8192];
            long received;
            fixed (byte* r = reply)
            {
                received = (long)LibC.recv(fd, r, reply.Length, 0);
            }
            if (received < NetlinkMessages.HeaderLength)
            {
                return NetlinkAnswer.Failed("recv(netlink reply)", received < 0 ? LibC.errno : Errno.EIO);
            }
            int replyType = BinaryPrimitives.ReadUInt16LittleEndian(reply.AsSpan(4));
            int error = replyType == NetlinkMessages.NlmsgError && received >= NetlinkMessages.HeaderLength + 4 ? -BinaryPrimitives.ReadInt32LittleEndian(reply.AsSpan(NetlinkMessages.HeaderLength)) : 0;
            return new NetlinkAnswer(replyType, error, error == 0 ? null : "netlink request");
        }
        finally
        {
            LibC.close(fd);
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeVal
    {
        public long Seconds;
        public long Microseconds;
    }
}
