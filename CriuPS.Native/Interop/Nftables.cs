using System.Runtime.InteropServices;

namespace CriuPS.Native.Interop;

/// <summary>
/// nftables through libnftables (the library behind nft(8), Debian package libnftables1): one buffer of nft commands,
/// applied by the kernel as a single transaction, all or nothing. The context's netlink socket is opened in the
/// calling thread's network namespace, so the rules land in that namespace.
/// </summary>
public static class Nftables
{
    public const string Library = "libnftables.so.1";

    /// <summary>Whether libnftables can be loaded on this machine.</summary>
    public static bool IsAvailable => NativeLibrary.TryLoad(Library, out _);

    /// <summary>Runs <paramref name="commands"/> (nft syntax, one command a line) and returns what nft printed.</summary>
    /// <exception cref="NftablesException">The library is missing, or nftables refused the commands (nothing was changed).</exception>
    public static string Run(string commands)
    {
        using var context = NftablesContext.Open();
        return context.Run(commands);
    }
}
