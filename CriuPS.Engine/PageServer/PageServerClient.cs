using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using CriuPS.Engine.Errors;

namespace CriuPS.Engine.PageServer;

/// <summary>
/// The client side of the page server protocol: connects (TCP, then TLS when asked), says Hello, and turns every
/// way this can fail into an error that names the server and what to do.
/// </summary>
internal static class PageServerClient
{
    /// <summary>Connects for <paramref name="purpose"/>; returns the connection and the server's Welcome.</summary>
    public static (PageServerConnection Connection, Welcome Welcome) Connect(PageServerEndpoint endpoint, SessionPurpose purpose, string imageId, object target)
    {
        var identity = endpoint.ClientCertificate is { } mine ? PageServerTls.RequireKey(mine, target) : null;
        var socket = Open(endpoint, target);
        Stream stream = new NetworkStream(socket, ownsSocket: false);
        var check = new PageServerTls.ServerCheck(endpoint);
        PageServerConnection? connection = null;
        bool secured = false;
        try
        {
            if (endpoint.Tls)
            {
                var tls = new SslStream(stream, leaveInnerStreamOpen: false, check.Validate);
                stream = tls;
                using var timeout = new CancellationTokenSource(PageServerConnection.Timeout);
                tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = endpoint.Host,
                    CertificateRevocationCheckMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
                    ClientCertificateContext = identity is null ? null : SslStreamCertificateContext.Create(identity, additionalCertificates: null, offline: true),
                }, timeout.Token).GetAwaiter().GetResult();
                secured = true;
            }
            connection = new PageServerConnection(socket, stream, endpoint.Description);
            PageServerMessages.Send(connection.Frames, new Hello(PageServerMessages.Version, purpose, imageId));
            var welcome = PageServerMessages.ReadWelcome(connection.Expect(FrameType.Welcome));
            return (connection, welcome);
        }
        catch (Exception e)
        {
            if (connection is null)
            {
                stream.Dispose();
                socket.Dispose();
            }
            else
            {
                connection.Dispose();
            }
            throw Explain(e, endpoint, check, target, secured);
        }
    }

    /// <summary>What a failure in the middle of a session means for the user: the server is gone, or said no.</summary>
    public static CheckpointException Lost(Exception e, PageServerEndpoint endpoint, object target) => e switch
    {
        CheckpointException known => known,
        PeerRefusedException { Code: RefusalCode.Corrupt } corrupt => new CheckpointException(CheckpointErrorKind.ImageCorrupt,
            $"The {endpoint.Description} found image files damaged: {corrupt.Message}", target,
            "Nothing damaged was kept or served. Checkpoint again (a file damaged on its way points at the network or the machines' memory), or restore from an intact copy.", e),
        PeerRefusedException refused => new CheckpointException(CheckpointErrorKind.PageServerRefused, $"The {endpoint.Description} refused: {refused.Message}", target, null, e),
        _ => new CheckpointException(CheckpointErrorKind.PageServerUnavailable,
            $"The connection to the {endpoint.Description} was lost: {Describe(e)}", target, "Check that the page server is still running and reachable.", e),
    };

    private static Socket Open(PageServerEndpoint endpoint, object target)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            PageServerConnection.LimitWaits(socket);
            using var timeout = new CancellationTokenSource(PageServerConnection.Timeout);
            var addresses = IPAddress.TryParse(endpoint.Host, out var literal)
                ? new[] { literal }
                : Dns.GetHostAddressesAsync(endpoint.Host, timeout.Token).GetAwaiter().GetResult();
            socket.ConnectAsync(addresses, endpoint.Port, timeout.Token).AsTask().GetAwaiter().GetResult();
            return socket;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            socket.Dispose();
            throw new CheckpointException(CheckpointErrorKind.PageServerUnavailable,
                $"Cannot connect to the {endpoint.Description}: {Describe(e)}", target,
                "Check the address and port, that Start-LazyPageServer runs there, and that no firewall is in the way.", e);
        }
    }

    private static CheckpointException Explain(Exception e, PageServerEndpoint endpoint, PageServerTls.ServerCheck check, object target, bool secured)
    {
        if (check.Refusal is { } refusal)
        {
            return new CheckpointException(CheckpointErrorKind.PageServerUntrusted,
                $"The {endpoint.Description} is not trusted: {refusal}. Nothing was sent to it.", target,
                "Trust its certificate explicitly with -PageServerCertificate or -PageServerThumbprint, or give the server a certificate this machine trusts.", e);
        }
        // In TLS 1.3 the server judges the client's certificate after the client has finished its handshake: a
        // refusal reaches the client as the connection ending where the Welcome was due.
        if (secured && e is IOException)
        {
            var presented = endpoint.ClientCertificate is { } mine ? $"its certificate {mine.Subject} ({mine.Thumbprint}) is not one the server trusts" : "it presented no client certificate";
            return new CheckpointException(CheckpointErrorKind.PageServerRefused,
                $"The {endpoint.Description} ended the connection after the TLS handshake, before its Welcome: a server that authenticates its clients does so when a client is not one of them, and {presented} ({Describe(e)}). Nothing was sent to it.", target,
                "Give -ClientCertificate with a certificate (and its private key) that the server trusts: Start-LazyPageServer -ClientCertificate or -ClientThumbprint names those.", e);
        }
        if (e is AuthenticationException)
        {
            return new CheckpointException(CheckpointErrorKind.PageServerUnavailable,
                $"The TLS handshake with the {endpoint.Description} failed: {Describe(e)}", target,
                "Start the page server with a certificate (-CertificatePath or -Certificate) to use TLS, or connect without TLS; a server that authenticates its clients needs -ClientCertificate.", e);
        }
        if (e is PeerRefusedException { Code: RefusalCode.Version } version)
        {
            return new CheckpointException(CheckpointErrorKind.PageServerRefused, $"The {endpoint.Description} speaks another protocol version: {version.Message}", target,
                "Use the same CriuPS version on both machines.", e);
        }
        if (e is ProtocolException && !endpoint.Tls)
        {
            return new CheckpointException(CheckpointErrorKind.PageServerUnavailable,
                $"The {endpoint.Description} did not answer the handshake ({e.Message}); a server with a certificate expects TLS.", target,
                "If the server uses TLS, connect with -UseTls, -PageServerCertificate or -PageServerThumbprint.", e);
        }
        return Lost(e, endpoint, target);
    }

    // The innermost message says what the network said (connection refused, reset, timed out).
    private static string Describe(Exception e)
    {
        var inner = e;
        while (inner.InnerException is not null && inner is not SocketException)
        {
            inner = inner.InnerException;
        }
        return inner is OperationCanceledException ? $"no answer within {PageServerConnection.Timeout.TotalSeconds:F0} s" : inner.Message.TrimEnd('.') + ".";
    }
}
