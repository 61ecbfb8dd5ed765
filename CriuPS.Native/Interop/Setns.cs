using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// setns(2) for network namespaces. A network namespace belongs to a thread, not to the whole process: the calling
/// thread alone moves, so that the sockets it creates (and the netlink sockets it opens: sock_diag, nftables) are
/// in that namespace, and nothing else of the engine is.
/// </summary>
public static class Setns
{
    public const int CloneNewNet = 0x40000000, CloneNewUts = 0x04000000, CloneNewPid = 0x20000000, CloneNewNs = 0x00020000;

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
