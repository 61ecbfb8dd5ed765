using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>getsockopt(2) and setsockopt(2) on sockets of this process.</summary>
public static unsafe class SocketOption
{
    public const int SOL_SOCKET = 1;
    public const int SO_REUSEADDR = 2, SO_DONTROUTE = 5, SO_BROADCAST = 6, SO_SNDBUF = 7, SO_RCVBUF = 8, SO_KEEPALIVE = 9;
    public const int SO_OOBINLINE = 10, SO_NO_CHECK = 11, SO_PRIORITY = 12, SO_LINGER = 13, SO_REUSEPORT = 15, SO_PASSCRED = 16;
    public const int SO_RCVLOWAT = 18, SO_RCVTIMEO = 20, SO_SNDTIMEO = 21, SO_GET_FILTER = 26, SO_SNDBUFFORCE = 32, SO_RCVBUFFORCE = 33;
    public const int SO_PASSSEC = 34, SO_MARK = 36, SO_PEEK_OFF = 42, SO_BUF_LOCK = 72;

    public static int Get(FileDescriptor socket, int level, int name)
    {
        int value = 0;
        Get(socket, level, name, new Span<byte>(&value, sizeof(int)));
        return value;
    }

    /// <summary>Reads an option into <paramref name="value"/>; returns how many bytes the kernel wrote.</summary>
    public static int Get(FileDescriptor socket, int level, int name, Span<byte> value)
    {
        socklen_t length = (uint)value.Length;
        fixed (byte* p = value)
        {
            if (LibC.getsockopt(socket.Value, level, name, p, &length) != 0)
            {
                throw new NativeException($"getsockopt({level}, {name})", LibC.errno);
            }
        }
        return (int)(uint)length;
    }

    /// <summary>
    /// The classic BPF filter attached with SO_ATTACH_FILTER, one instruction per word as CRIU stores it (code,
    /// jt, jf, k from the top bits down); empty when none. SO_GET_FILTER counts in instructions, not bytes.
    /// </summary>
    public static ulong[] GetFilter(FileDescriptor socket)
    {
        socklen_t count = 0;
        if (LibC.getsockopt(socket.Value, SOL_SOCKET, SO_GET_FILTER, null, &count) != 0)
        {
            throw new NativeException("getsockopt(SO_GET_FILTER)", LibC.errno);
        }
        var instructions = new ulong[(int)(uint)count];
        fixed (ulong* p = instructions)
        {
            if (instructions.Length > 0 && LibC.getsockopt(socket.Value, SOL_SOCKET, SO_GET_FILTER, p, &count) != 0)
            {
                throw new NativeException("getsockopt(SO_GET_FILTER)", LibC.errno);
            }
        }
        // struct sock_filter is { u16 code; u8 jt; u8 jf; u32 k; }: little-endian in memory, reordered here.
        return instructions.Select(raw => ((raw & 0xFFFF) << 48) | (((raw >> 16) & 0xFF) << 40) | (((raw >> 24) & 0xFF) << 32) | (raw >> 32)).ToArray();
    }

    /// <summary>Attaches a classic BPF filter given as <see cref="GetFilter"/> returns it.</summary>
    public static void AttachFilter(FileDescriptor socket, IReadOnlyList<ulong> filter)
    {
        const int SoAttachFilter = 26;
        var raw = filter.Select(word => ((word >> 48) & 0xFFFF) | (((word >> 40) & 0xFF) << 16) | (((word >> 32) & 0xFF) << 24) | ((word & 0xFFFFFFFF) << 32)).ToArray();
        fixed (ulong* p = raw)
        {
            // struct sock_fprog: u16 len, padding, then the pointer.
            var program = stackalloc ulong[2];
            program[0] = (ulong)raw.Length;
            program[1] = (ulong)p;
            Set(socket, SOL_SOCKET, SoAttachFilter, new ReadOnlySpan<byte>(program, 16));
        }
    }

    public static void Set(FileDescriptor socket, int level, int name, int value) =>
        Set(socket, level, name, new ReadOnlySpan<byte>(&value, sizeof(int)));

    public static void Set(FileDescriptor socket, int level, int name, ReadOnlySpan<byte> value)
    {
        fixed (byte* p = value)
        {
            if (LibC.setsockopt(socket.Value, level, name, p, (uint)value.Length) != 0)
            {
                throw new NativeException($"setsockopt({level}, {name})", LibC.errno);
            }
        }
    }
}
