using System.Runtime.InteropServices;
using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Interop;
using static CriuPS.Native.Interop.SocketOption;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// The SOL_SOCKET options of a socket (sk_opts_entry), the ones CRIU saves: buffer sizes and their lock, timeouts,
/// priority, mark, low-water mark, the boolean flags, linger, the device it is bound to and an attached classic
/// BPF filter.
/// </summary>
internal static class SocketOptions
{
    public const int UnixFamily = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeVal
    {
        public long Seconds;
        public long Microseconds;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Linger
    {
        public int OnOff;
        public int Seconds;
    }

    /// <param name="family">AF_UNIX, AF_INET...: as CRIU, credential passing is saved for unix sockets only.</param>
    public static SkOptsEntry Dump(FileDescriptor socket, int family)
    {
        var send = GetStruct<TimeVal>(socket, LibC.SO_SNDTIMEO);
        var receive = GetStruct<TimeVal>(socket, LibC.SO_RCVTIMEO);
        var linger = GetStruct<Linger>(socket, LibC.SO_LINGER);
        int mark = Get(socket, LibC.SOL_SOCKET, LibC.SO_MARK);
        var options = new SkOptsEntry
        {
            // getsockopt reports the doubled size the kernel uses; Restore halves it again.
            SoSndbuf = (uint)Get(socket, LibC.SOL_SOCKET, LibC.SO_SNDBUF),
            SoRcvbuf = (uint)Get(socket, LibC.SOL_SOCKET, LibC.SO_RCVBUF),
            SoSndTmoSec = (ulong)send.Seconds,
            SoSndTmoUsec = (ulong)send.Microseconds,
            SoRcvTmoSec = (ulong)receive.Seconds,
            SoRcvTmoUsec = (ulong)receive.Microseconds,
            SoBufLock = (uint)Get(socket, LibC.SOL_SOCKET, SO_BUF_LOCK),
            SoPriority = (uint)Get(socket, LibC.SOL_SOCKET, LibC.SO_PRIORITY),
            SoRcvlowat = (uint)Get(socket, LibC.SOL_SOCKET, LibC.SO_RCVLOWAT),
            Reuseaddr = Flag(socket, LibC.SO_REUSEADDR),
            SoReuseport = Flag(socket, LibC.SO_REUSEPORT),
            SoDontroute = Flag(socket, LibC.SO_DONTROUTE),
            SoNoCheck = Flag(socket, LibC.SO_NO_CHECK),
            SoBroadcast = Flag(socket, LibC.SO_BROADCAST),
            SoKeepalive = Flag(socket, LibC.SO_KEEPALIVE),
            SoOobinline = (uint)Get(socket, LibC.SOL_SOCKET, LibC.SO_OOBINLINE),
        };
        // As CRIU: a mark is saved only when set (restoring one needs CAP_NET_ADMIN), linger only when on.
        if (mark != 0)
        {
            options.SoMark = (uint)mark;
        }
        if (linger.OnOff != 0)
        {
            options.SoLinger = (uint)linger.Seconds;
        }
        if (family == UnixFamily)
        {
            options.SoPasscred = Flag(socket, LibC.SO_PASSCRED);
            options.SoPasssec = Flag(socket, LibC.SO_PASSSEC);
        }
        var device = GetString(socket, LibC.SOL_SOCKET, LibC.SO_BINDTODEVICE);
        if (device.Length > 0)
        {
            options.SoBoundDev = device;
        }
        options.SoFilter.AddRange(GetFilter(socket));
        return options;
    }

    /// <summary>
    /// Sets the saved options on a recreated socket. Buffer sizes are forced (SO_*BUFFORCE, allowed with
    /// CAP_NET_ADMIN), so that sizes above net.core.[rw]mem_max come back as they were.
    /// </summary>
    public static void Restore(FileDescriptor socket, SkOptsEntry options)
    {
        Set(socket, LibC.SOL_SOCKET, LibC.SO_SNDBUFFORCE, (int)(options.SoSndbuf / 2));
        Set(socket, LibC.SOL_SOCKET, LibC.SO_RCVBUFFORCE, (int)(options.SoRcvbuf / 2));
        if (options.HasSoBufLock)
        {
            Set(socket, LibC.SOL_SOCKET, SO_BUF_LOCK, (int)options.SoBufLock);
        }
        if (options.HasSoPriority)
        {
            Set(socket, LibC.SOL_SOCKET, LibC.SO_PRIORITY, (int)options.SoPriority);
        }
        if (options.HasSoRcvlowat)
        {
            Set(socket, LibC.SOL_SOCKET, LibC.SO_RCVLOWAT, (int)options.SoRcvlowat);
        }
        if (options.HasSoMark)
        {
            Set(socket, LibC.SOL_SOCKET, LibC.SO_MARK, (int)options.SoMark);
        }
        // Saved flags are set either way: a socket made by accept(2) starts with some of its listener's.
        SetFlag(socket, LibC.SO_REUSEADDR, options.HasReuseaddr, options.Reuseaddr);
        SetFlag(socket, LibC.SO_REUSEPORT, options.HasSoReuseport, options.SoReuseport);
        SetFlag(socket, LibC.SO_PASSCRED, options.HasSoPasscred, options.SoPasscred);
        SetFlag(socket, LibC.SO_PASSSEC, options.HasSoPasssec, options.SoPasssec);
        SetFlag(socket, LibC.SO_DONTROUTE, options.HasSoDontroute, options.SoDontroute);
        SetFlag(socket, LibC.SO_NO_CHECK, options.HasSoNoCheck, options.SoNoCheck);
        SetFlag(socket, LibC.SO_BROADCAST, options.HasSoBroadcast, options.SoBroadcast);
        SetFlag(socket, LibC.SO_KEEPALIVE, options.HasSoKeepalive, options.SoKeepalive);
        SetFlag(socket, LibC.SO_OOBINLINE, options.HasSoOobinline, options.SoOobinline != 0);
        if (options.HasSoLinger)
        {
            SetStruct(socket, LibC.SO_LINGER, new Linger { OnOff = 1, Seconds = (int)options.SoLinger });
        }
        SetStruct(socket, LibC.SO_SNDTIMEO, new TimeVal { Seconds = (long)options.SoSndTmoSec, Microseconds = (long)options.SoSndTmoUsec });
        SetStruct(socket, LibC.SO_RCVTIMEO, new TimeVal { Seconds = (long)options.SoRcvTmoSec, Microseconds = (long)options.SoRcvTmoUsec });
        BindToDevice(socket, options);
        if (options.SoFilter.Count > 0)
        {
            AttachFilter(socket, options.SoFilter);
        }
    }

    /// <summary>SO_BINDTODEVICE with the saved device name, if any (an IP socket needs it before bind and connect).</summary>
    public static void BindToDevice(FileDescriptor socket, SkOptsEntry options)
    {
        if (options.HasSoBoundDev)
        {
            Set(socket, LibC.SOL_SOCKET, LibC.SO_BINDTODEVICE, System.Text.Encoding.UTF8.GetBytes(options.SoBoundDev));
        }
    }

    private static bool Flag(FileDescriptor socket, int name) => Get(socket, LibC.SOL_SOCKET, name) != 0;

    // An option an image does not have (CRIU's older ones) stays at the new socket's default.
    private static void SetFlag(FileDescriptor socket, int name, bool saved, bool on)
    {
        if (saved)
        {
            Set(socket, LibC.SOL_SOCKET, name, on ? 1 : 0);
        }
    }

    private static T GetStruct<T>(FileDescriptor socket, int name) where T : unmanaged
    {
        T value = default;
        Get(socket, LibC.SOL_SOCKET, name, MemoryMarshal.AsBytes(new Span<T>(ref value)));
        return value;
    }

    private static void SetStruct<T>(FileDescriptor socket, int name, T value) where T : unmanaged =>
        Set(socket, LibC.SOL_SOCKET, name, MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value)));
}
