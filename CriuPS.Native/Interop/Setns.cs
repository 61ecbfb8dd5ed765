using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// setns(2) for network namespaces. A network namespace belongs to a thread, not to the whole process: the calling
/// thread alone moves, so that the sockets it creates (and the netlink sockets it opens: sock_diag, nftables) are
/// in that namespace, and nothing else of the engine is.
/// </summary>
public static class Setns
{
    public const int CloneNewNet = 0x40000000, CloneNewUts = 0x04000000;

    /// <summary>Moves the calling thread into the network namespace <paramref name="target"/> until the scope is disposed.</summary>
    public static IDisposable EnterNetwork(FileDescriptor target)
    {
        var previous = FileDescriptor.Open("/proc/thread-self/ns/net", O.RDONLY);
        try
        {
            Join(target, "the target network namespace");
        }
        catch
        {
            previous.Dispose();
            throw;
        }
        return new Return(previous);
    }

    // NS_GET_NSTYPE: _IO(0xb7, 0x3).
    private const int NsGetNstype = 0xb703;

    /// <summary>
    /// Makes a new network namespace and returns a descriptor that keeps it alive, the calling thread staying where it
    /// was: it unshares into the new namespace, opens it, and goes back. Closing the last descriptor (with no process in
    /// it) ends the namespace and the devices in it.
    /// </summary>
    public static FileDescriptor CreateNetwork()
    {
        using var previous = FileDescriptor.Open("/proc/thread-self/ns/net", O.RDONLY);
        if (LibC.unshare(CloneNewNet) != 0)
        {
            throw new NativeException("unshare(CLONE_NEWNET)", LibC.errno);
        }
        try
        {
            return FileDescriptor.Open("/proc/thread-self/ns/net", O.RDONLY);
        }
        finally
        {
            Join(previous, "the engine's network namespace");
        }
    }

    /// <summary>Whether <paramref name="ns"/> is a network namespace (NS_GET_NSTYPE): an opened file may be anything.</summary>
    public static bool IsNetwork(FileDescriptor ns) => LibC.ioctl(ns.Value, NsGetNstype) == CloneNewNet;

    private static void Join(FileDescriptor ns, string what)
    {
        if (LibC.setns(ns.Value, CloneNewNet) != 0)
        {
            throw new NativeException($"setns into {what}", LibC.errno);
        }
    }

    private sealed class Return(FileDescriptor previous) : IDisposable
    {
        public void Dispose()
        {
            if (!previous.IsOpen)
            {
                return;
            }
            try
            {
                Join(previous, "the engine's network namespace");
            }
            finally
            {
                previous.Dispose();
            }
        }
    }
}
