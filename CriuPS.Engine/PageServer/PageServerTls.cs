using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CriuPS.Engine.Errors;

namespace CriuPS.Engine.PageServer;

/// <summary>
/// TLS for the page server: the server's certificate (PEM with its key, or PKCS#12), the client's check of what a
/// server presents, and the server's check of what a client presents (mutual TLS, as CRIU's page server does with
/// its CA). The client accepts a certificate only when it is the one the user trusted explicitly (by certificate or
/// thumbprint), or when it chains to a root this machine trusts and is issued to the host name connected to. The
/// server accepts a client only with a certificate it was told to trust, by certificate or thumbprint: pinning,
/// because the clients of a page server are a few known machines, and any certificate a public root signed must not
/// be enough to write into its image directory. Revocation is not checked (these machines are often offline);
/// pinning the certificate avoids depending on it.
/// </summary>
internal static class PageServerTls
{
    /// <summary>Loads a server certificate with its private key: PEM (the key in <paramref name="keyPath"/>, or in the same file) or PKCS#12.</summary>
    public static X509Certificate2 LoadServerCertificate(string certificatePath, string? keyPath)
    {
        X509Certificate2 certificate;
        try
        {
            bool pem = File.ReadAllText(certificatePath).Contains("-----BEGIN", StringComparison.Ordinal);
            certificate = pem
                ? X509Certificate2.CreateFromPemFile(certificatePath, keyPath)
                : X509CertificateLoader.LoadPkcs12FromFile(certificatePath, password: null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            throw new CheckpointException(CheckpointErrorKind.CertificateUnusable,
                $"The certificate '{certificatePath}'{(keyPath is null ? "" : $" with the key '{keyPath}'")} cannot be loaded: {e.Message}",
                certificatePath,
                "Give a PEM certificate and its PEM private key (-KeyPath), or a PKCS#12 file without a password.",
                e);
        }
        return RequireKey(certificate, certificatePath);
    }

    /// <summary>Checks that a certificate this end presents has its private key (TLS cannot use it otherwise).</summary>
    public static X509Certificate2 RequireKey(X509Certificate2 certificate, object target)
    {
        if (!certificate.HasPrivateKey)
        {
            throw new CheckpointException(CheckpointErrorKind.CertificateUnusable,
                $"The certificate {certificate.Subject} ({certificate.Thumbprint}) has no private key, without which TLS cannot present it.", target,
                "Give the certificate together with its private key (X509Certificate2.CreateFromPemFile with the key file, or a PKCS#12 file).");
        }
        return certificate;
    }

    /// <summary>Whether <paramref name="certificate"/> has <paramref name="thumbprint"/>: SHA-1 or SHA-256, hex, colons and spaces allowed.</summary>
    public static bool HasThumbprint(X509Certificate2 certificate, string thumbprint)
    {
        var wanted = thumbprint.Replace(":", "", StringComparison.Ordinal).Replace(" ", "", StringComparison.Ordinal);
        return string.Equals(wanted, certificate.Thumbprint, StringComparison.OrdinalIgnoreCase)
            || string.Equals(wanted, certificate.GetCertHashString(HashAlgorithmName.SHA256), StringComparison.OrdinalIgnoreCase);
    }

    private static X509Certificate2 Full(X509Certificate presented) =>
        presented as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(presented.GetRawCertData());

    /// <summary>
    /// The server's judgement of the certificate a client presents (one per connection, remembered for the error):
    /// one of the trusted certificates, or one with a trusted thumbprint; nothing else, whatever signed it.
    /// </summary>
    public sealed class ClientCheck
    {
        private readonly IReadOnlyList<X509Certificate2> certificates;
        private readonly IReadOnlyList<string> thumbprints;

        public ClientCheck(IReadOnlyList<X509Certificate2> certificates, IReadOnlyList<string> thumbprints)
        {
            this.certificates = certificates;
            this.thumbprints = thumbprints;
        }

        /// <summary>Why the client was refused, once it was.</summary>
        public string? Refusal { get; private set; }

        public bool Validate(object sender, X509Certificate? presented, X509Chain? chain, SslPolicyErrors errors)
        {
            if (presented is null)
            {
                Refusal = "it presented no client certificate (this server accepts only clients whose certificate it trusts)";
                return false;
            }
            var certificate = Full(presented);
            if (certificates.Any(c => c.RawData.AsSpan().SequenceEqual(certificate.RawData)) || thumbprints.Any(t => HasThumbprint(certificate, t)))
            {
                return true;
            }
            Refusal = $"it presented the client certificate {certificate.Subject}, SHA-1 thumbprint {certificate.Thumbprint}, which this server does not trust";
            return false;
        }
    }

    /// <summary>The client's judgement of the certificate a server presents, remembered for the error message.</summary>
    public sealed class ServerCheck
    {
        private readonly PageServerEndpoint endpoint;

        public ServerCheck(PageServerEndpoint endpoint) => this.endpoint = endpoint;

        /// <summary>Why the certificate was refused, once it was.</summary>
        public string? Refusal { get; private set; }

        public bool Validate(object sender, X509Certificate? presented, X509Chain? chain, SslPolicyErrors errors)
        {
            if (presented is null)
            {
                Refusal = "it presented no certificate";
                return false;
            }
            var certificate = Full(presented);
            string who = $"{certificate.Subject}, SHA-1 thumbprint {certificate.Thumbprint}";
            if (endpoint.TrustedCertificate is { } trusted)
            {
                if (certificate.RawData.AsSpan().SequenceEqual(trusted.RawData))
                {
                    return true;
                }
                Refusal = $"it presented {who}, not the trusted certificate {trusted.Subject} ({trusted.Thumbprint})";
                return false;
            }
            if (endpoint.TrustedThumbprint is { } thumbprint)
            {
                if (HasThumbprint(certificate, thumbprint))
                {
                    return true;
                }
                Refusal = $"it presented {who}, whose thumbprint is not {thumbprint}";
                return false;
            }
            if (errors == SslPolicyErrors.None)
            {
                return true;
            }
            var reasons = new List<string>();
            if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
            {
                reasons.Add($"it is not issued to '{endpoint.Host}'");
            }
            if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0)
            {
                var status = chain?.ChainStatus.Select(s => s.Status.ToString()).Distinct() ?? Array.Empty<string>();
                reasons.Add($"this machine does not trust its chain ({string.Join(", ", status)})");
            }
            Refusal = $"it presented {who}, and {string.Join(" and ", reasons)}";
            return false;
        }
    }
}
