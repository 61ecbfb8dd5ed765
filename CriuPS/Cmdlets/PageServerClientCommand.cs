using System.Management.Automation;
using System.Security.Cryptography.X509Certificates;
using CriuPS.Engine.PageServer;

namespace CriuPS.Cmdlets;

/// <summary>
/// The parameters of the cmdlets that connect to a page server (Checkpoint-Process sends it a checkpoint,
/// Restore-Process -LazyPages fetches pages from it): where it is, and how to trust it.
/// </summary>
public abstract class PageServerClientCommand : PSCmdlet
{
    /// <summary>host:port of a page server (Start-LazyPageServer).</summary>
    [Parameter]
    public string? PageServer { get; set; }

    /// <summary>TLS, trusting exactly this certificate.</summary>
    [Parameter]
    public X509Certificate2? PageServerCertificate { get; set; }

    /// <summary>TLS, trusting exactly the certificate with this thumbprint.</summary>
    [Parameter]
    public string? PageServerThumbprint { get; set; }

    /// <summary>TLS, trusting the certificates this machine trusts.</summary>
    [Parameter]
    public SwitchParameter UseTls { get; set; }

    /// <summary>TLS, presenting this certificate (with its private key) to a server that authenticates its clients.</summary>
    [Parameter]
    public X509Certificate2? ClientCertificate { get; set; }

    /// <summary>
    /// The page server of -PageServer, trusted as the other parameters say; null without -PageServer. An address
    /// that is not host:port, or trust without a server, is a terminating error.
    /// </summary>
    protected PageServerEndpoint? ResolvePageServer()
    {
        if (PageServer is null)
        {
            if (UseTls || PageServerCertificate is not null || PageServerThumbprint is not null || ClientCertificate is not null)
            {
                Refuse("-UseTls, -PageServerCertificate, -PageServerThumbprint and -ClientCertificate are about a page server; give one with -PageServer.");
            }
            return null;
        }
        try
        {
            var (host, port) = PageServerEndpoint.ParseAddress(PageServer);
            return new PageServerEndpoint { Host = host, Port = port, UseTls = UseTls, TrustedCertificate = PageServerCertificate, TrustedThumbprint = PageServerThumbprint, ClientCertificate = ClientCertificate };
        }
        catch (ArgumentException e)
        {
            Refuse(e.Message);
            return null;
        }
    }

    /// <summary>Refuses a combination of parameters, as a terminating error naming the page server.</summary>
    protected void Refuse(string message) =>
        ThrowTerminatingError(new ErrorRecord(new ArgumentException(message), "PageServerParameterInvalid", ErrorCategory.InvalidArgument, PageServer));
}
