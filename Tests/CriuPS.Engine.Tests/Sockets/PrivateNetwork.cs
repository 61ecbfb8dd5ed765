using CriuPS.Native.Interop;
using Tmds.Linux;

namespace CriuPS.Engine.Tests.Sockets;

/// <summary>
/// Runs a test on a thread of its own in a new, empty network namespace (only that thread moves: a network
/// namespace belongs to a thread), with its loopback up, so that its connections, firewall rules and ports touch
/// nothing of the machine's.
/// </summary>
internal static class PrivateNetwork
{
    public static void Run(Action test)
    {
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                if (LibC.unshare(LibC.CLONE_NEWNET) != 0)
                {
                    throw new NativeException("unshare(CLONE_NEWNET)", LibC.errno);
                }
                LoopbackUp();
                test();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
    }

    // SIOCGIFFLAGS / SIOCSIFFLAGS on "lo" with IFF_UP: struct ifreq is the name (16 bytes), then the flags.
    private static unsafe void LoopbackUp()
    {
        using var socket = Socket.Create(LibC.AF_INET, LibC.SOCK_DGRAM, 0);
        var request = stackalloc byte[40];
        new Span<byte>(request, 40).Clear();
        "lo"u8.CopyTo(new Span<byte>(request, 16));
        if (LibC.ioctl(socket.Value, 0x8913, request) != 0 || (*(short*)(request + 16) |= 1) == 0 || LibC.ioctl(socket.Value, 0x8914, request) != 0)
        {
            throw new NativeException("ioctl(SIOCSIFFLAGS) of lo", LibC.errno);
        }
    }
}
