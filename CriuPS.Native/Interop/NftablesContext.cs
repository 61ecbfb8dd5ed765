using System.Runtime.InteropServices;

namespace CriuPS.Native.Interop;

/// <summary>
/// A libnftables context kept open: its netlink socket stays in the network namespace it was opened in, and a
/// table made through it with the owner flag lives only as long as it does (the kernel removes it when the
/// socket closes, our death included).
/// </summary>
public sealed partial class NftablesContext : IDisposable
{
    private const uint DefaultContext = 0;

    private IntPtr context;

    private NftablesContext(IntPtr context) => this.context = context;

    /// <exception cref="NftablesException">The library is missing or refuses a context.</exception>
    public static NftablesContext Open()
    {
        if (!Nftables.IsAvailable)
        {
            throw new NftablesException($"{Nftables.Library} cannot be loaded (install the package libnftables1)", "");
        }
        IntPtr context = nft_ctx_new(DefaultContext);
        if (context == IntPtr.Zero)
        {
            throw new NftablesException("nft_ctx_new failed", "");
        }
        // Buffered, so that nothing goes to our stdout/stderr and the error text can go into the exception.
        nft_ctx_buffer_output(context);
        nft_ctx_buffer_error(context);
        return new NftablesContext(context);
    }

    /// <summary>Runs <paramref name="commands"/> as one transaction and returns what nft printed.</summary>
    /// <exception cref="NftablesException">nftables refused the commands (nothing was changed).</exception>
    public string Run(string commands)
    {
        ObjectDisposedException.ThrowIf(context == IntPtr.Zero, this);
        if (nft_run_cmd_from_buffer(context, commands) != 0)
        {
            throw new NftablesException(Marshal.PtrToStringUTF8(nft_ctx_get_error_buffer(context))?.Trim() ?? "no error text", commands);
        }
        return Marshal.PtrToStringUTF8(nft_ctx_get_output_buffer(context)) ?? "";
    }

    public void Dispose()
    {
        if (context != IntPtr.Zero)
        {
            nft_ctx_free(context);
            context = IntPtr.Zero;
        }
    }

    [LibraryImport(Nftables.Library)]
    private static partial IntPtr nft_ctx_new(uint flags);

    [LibraryImport(Nftables.Library)]
    private static partial void nft_ctx_free(IntPtr context);

    [LibraryImport(Nftables.Library)]
    private static partial int nft_ctx_buffer_output(IntPtr context);

    [LibraryImport(Nftables.Library)]
    private static partial int nft_ctx_buffer_error(IntPtr context);

    [LibraryImport(Nftables.Library)]
    private static partial IntPtr nft_ctx_get_output_buffer(IntPtr context);

    [LibraryImport(Nftables.Library)]
    private static partial IntPtr nft_ctx_get_error_buffer(IntPtr context);

    [LibraryImport(Nftables.Library, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int nft_run_cmd_from_buffer(IntPtr context, string commands);
}
