using System.Net;
using System.Security.Cryptography.X509Certificates;

namespace CriuPS.Engine.PageServer;

/// <summary>How to start a page server.</summary>
public sealed class PageServerOptions
{
    /// <summary>The image directory: where a dump streamed to the server lands, and whose pages it serves.</summary>
    public required string ImagePath { get; init; }

    /// <summary>
    /// An image directory on this machine (a pre-dump received earlier) that the dump this server receives builds on:
    /// the received image is linked to it (a relative `parent` link, as a local -ParentImage writes it). The server's
    /// operator names it, never the client, which cannot make the server link to anything.
    /// </summary>
    public string? ParentImage { get; init; }

    /// <summary>The address to listen on.</summary>
    public IPAddress Address { get; init; } = IPAddress.Loopback;

    /// <summary>The port; 0 lets the system pick a free one.</summary>
    public int Port { get; init; }

    /// <summary>With a certificate (and its private key) the server speaks TLS only.</summary>
    public X509Certificate2? Certificate { get; init; }

    /// <summary>Or the certificate's file: PEM (with <see cref="KeyPath"/>, or the key in the same file) or PKCS#12.</summary>
    public string? CertificatePath { get; init; }

    /// <summary>The PEM private key of <see cref="CertificatePath"/>.</summary>
    public string? KeyPath { get; init; }

    /// <summary>With TLS: the client certificates the server accepts (mutual TLS); a client without one is refused.</summary>
    public IReadOnlyList<X509Certificate2> ClientCertificates { get; init; } = [];

    /// <summary>With TLS: the SHA-1 or SHA-256 thumbprints (hex) of the client certificates the server accepts.</summary>
    public IReadOnlyList<string> ClientThumbprints { get; init; } = [];

    /// <summary>
    /// Lets a server that does not authenticate its clients (no client certificate to trust) listen on an address
    /// other than loopback: the network is trusted to let only legitimate clients reach it.
    /// </summary>
    public bool TrustedNetwork { get; init; }

    /// <summary>Deadlines and caps per client.</summary>
    public PageServerLimits Limits { get; init; } = new();
}
