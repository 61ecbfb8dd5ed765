namespace CriuPS.Native.Interop;

/// <summary>nftables refused a batch of commands, or libnftables is missing.</summary>
public sealed class NftablesException(string message, string commands) : Exception($"nftables: {message}")
{
    /// <summary>The commands that were refused.</summary>
    public string Commands { get; } = commands;
}
