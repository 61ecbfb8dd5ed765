using System.Globalization;
using System.Security.Cryptography.X509Certificates;

namespace CriuPS.Engine.PageServer;

/// <summary>
/// A page server to connect to, and how to trust it. Plain TCP unless TLS is asked for; with TLS the server's
/// certificate must be the <see cref="TrustedCertificate"/>, or have the <see cref="TrustedThumbprint"/>, or else
/// chain to a root this machine trusts and carry the host's name. No other certificate is accepted.
/// </summary>
public sealed class PageServerEndpoint
{
    public required string Host { get; init; }

    public required int Port { get; init; }

    /// <summary>Use TLS, checking the certificate against this machine's trusted roots.</summary>
    public bool UseTls { get; init; }

    /// <summary>Use TLS and accept exactly this certificate (a self-signed one, say), whatever its name.</summary>
    public X509Certificate2? TrustedCertificate { get; init; }

    /// <summary>Use TLS and accept exactly the certificate with this SHA-1 or SHA-256 thumbprint (hex).</summary>
    public string? TrustedThumbprint { get; init; }

    /// <summary>Use TLS and present this certificate (with its private key) to a server that authenticates its clients.</summary>
    public X509Certificate2? ClientCertificate { get; init; }

    /// <summary>Whether the connection uses TLS.</summary>
    public bool Tls => UseTls || TrustedCertificate is not null || TrustedThumbprint is not null || ClientCertificate is not null;

    /// <summary>Splits "host:port" (an IPv6 address in brackets: "[::1]:7000").</summary>
    public static (string Host, int Port) ParseAddress(string text)
    {
        int colon = text.LastIndexOf(':');
        string host = colon > 0 ? text[..colon] : "";
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }
        if (host.Length == 0 || host.Contains(']') || !int.TryParse(text[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
        {
            throw new ArgumentException($"'{text}' is not a page server address: use host:port, such as 10.0.0.2:7000 or [fd00::2]:7000.");
        }
        return (host, port);
    }

    public override string ToString() => Host.Contains(':') ? $"[{Host}]:{Port}" : $"{Host}:{Port}";

    /// <summary>The address, with (TLS) when it is used: for messages.</summary>
    public string Description => $"page server {this}{(Tls ? " (TLS)" : "")}";
}
