using System.Runtime.InteropServices;

namespace CriuPS.Native.Interop;

/// <summary>
/// nftables through libnftables (the library behind nft(8), Debian package libnftables1): one buffer of nft commands,
/// applied by the kernel as a single transaction, all or nothing. The context's netlink socket is opened in the
/// calling thread's network namespace, so the rules land in that namespace.
/// </summary>
public static partial class Nftables
{
    public const string Library = "libnftables.so.1";
    private const uint DefaultContext = 0;

    /// <summary>Whether libnftables can be loaded on this machine.</summary>
    public static bool IsAvailable => NativeLibrary.TryLoad(Library, out _);

    /// <summary>Runs <paramref name="commands"/> (nft syntax, one command a line) and returns what nft printed.</summary>
    /// <exception cref="NftablesException">The library is missing, or nftables refused the commands (nothing was changed).</exception>
    public static string Run(string commands)
    {
        if (!IsAvailable)
        {
            throw new NftablesException($"{Library} cannot be loaded (install the package libnftables1)", commands);
        }
        IntPtr context = nft_ctx_new(DefaultContext);
        if (context == IntPtr.Zero)
        {
            throw new NftablesException("nft_ctx_new failed", commands);
        }
        try
        {
            // Buffered, so that nothing goes to our stdout/stderr and the error text can go into the exception.
            nft_ctx_buffer_output(context);
            nft_ctx_buffer_error(context);
            if (nft_run_cmd_from_buffer(context, commands) != 0)
            {
                throw new NftablesException(Marshal.PtrToStringUTF8(nft_ctx_get_error_buffer(context))?.Trim() ?? "no error text", commands);
            }
            return Marshal.PtrToStringUTF8(nft_ctx_get_output_buffer(context)) ?? "";
        }
        finally
        {
            nft_ctx_free(context);
        }
    }

    [LibraryImport(Library)]
    private static partial IntPtr nft_ctx_new(uint flags);

    [LibraryImport(Library)]
    private static partial void nft_ctx_free(IntPtr context);

    [LibraryImport(Library)]
    private static partial int nft_ctx_buffer_output(IntPtr context);

    [LibraryImport(Library)]
    private static partial int nft_ctx_buffer_error(IntPtr context);

    [LibraryImport(Library)]
    private static partial IntPtr nft_ctx_get_output_buffer(IntPtr context);

    [LibraryImport(Library)]
    private static partial IntPtr nft_ctx_get_error_buffer(IntPtr context);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int nft_run_cmd_from_buffer(IntPtr context, string commands);
}

/// <summary>nftables refused a batch of commands, or libnftables is missing.</summary>
public sealed class NftablesException(string message, string commands) : Exception($"nftables: {message}")
{
    /// <summary>The commands that were refused.</summary>
    public string Commands { get; } = commands;
}
