using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// setns(2) for network and IPC namespaces. Such a namespace belongs to a thread, not to the whole process: the
/// calling thread alone moves, so that the sockets it creates (and the netlink sockets it opens: sock_diag, nftables),
/// or the System V objects it lists and makes and the /proc/sys/kernel files it opens, are in that namespace, and
/// nothing else of the engine is.
/// </summary>
public static class Setns
{
    // The other CLONE_NEW* flags are Tmds.LibC's (LibC.CLONE_NEWNET...); it has no CLONE_NEWTIME (Linux 5.6), nor
    // NS_GET_NSTYPE below.
    public const int CloneNewTime = 0x00000080;

    /// <summary>Moves the calling thread into the network namespace <paramref name="target"/> until the scope is disposed.</summary>
    public static IDisposable EnterNetwork(FileDescriptor target) => Enter(target, LibC.CLONE_NEWNET, "network");

    /// <summary>Moves the calling thread into the IPC namespace <paramref name="target"/> until the scope is disposed.</summary>
    public static IDisposable EnterIpc(FileDescriptor target) => Enter(target, LibC.CLONE_NEWIPC, "IPC");

    private static IDisposable Enter(FileDescriptor target, int type, string kind)
    {
        var previous = FileDescriptor.Open($"/proc/thread-self/ns/{(type == LibC.CLONE_NEWNET ? "net" : "ipc")}", O.RDONLY);
        try
        {
            Join(target, type, $"the target {kind} namespace");
        }
        catch
        {
            previous.Dispose();
            throw;
        }
        return new Return(previous, type, kind);
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
        if (LibC.unshare(LibC.CLONE_NEWNET) != 0)
        {
            throw new NativeException("unshare(CLONE_NEWNET)", LibC.errno);
        }
        try
        {
            return FileDescriptor.Open("/proc/thread-self/ns/net", O.RDONLY);
        }
        finally
        {
            Join(previous, LibC.CLONE_NEWNET, "the engine's network namespace");
        }
    }

    /// <summary>Whether <paramref name="ns"/> is a network namespace (NS_GET_NSTYPE): an opened file may be anything.</summary>
    public static bool IsNetwork(FileDescriptor ns) => LibC.ioctl(ns.Value, NsGetNstype) == LibC.CLONE_NEWNET;

    private static void Join(FileDescriptor ns, int type, string what)
    {
        if (LibC.setns(ns.Value, type) != 0)
        {
            throw new NativeException($"setns into {what}", LibC.errno);
        }
    }

    private sealed class Return(FileDescriptor previous, int type, string kind) : IDisposable
    {
        public void Dispose()
        {
            if (!previous.IsOpen)
            {
                return;
            }
            try
            {
                Join(previous, type, $"the engine's {kind} namespace");
            }
            finally
            {
                previous.Dispose();
            }
        }
    }
}
