using System.Management.Automation;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using CriuPS.Completers;
using CriuPS.Engine.PageServer;

namespace CriuPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Starts a page server that receives a checkpoint over the network and serves its pages to a lazy restore.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "LazyPageServer", DefaultParameterSetName = Plain)]
[OutputType(typeof(LazyPageServer))]
public sealed class StartLazyPageServerCommand : PSCmdlet
{
    private const string Plain = "Plain";
    private const string FromFile = "CertificateFile";
    private const string FromObject = "Certificate";

    [Parameter(Mandatory = true, Position = 0)]
    [Alias("Path")]
    [ArgumentCompleter(typeof(ImageDirectoryCompleter))]
    public string ImagePath { get; set; } = "";

    [Parameter]
    public string Address { get; set; } = "127.0.0.1";

    [Parameter]
    [ValidateRange(0, 65535)]
    public int Port { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = FromFile)]
    public string CertificatePath { get; set; } = "";

    [Parameter(ParameterSetName = FromFile)]
    public string? KeyPath { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = FromObject)]
    public X509Certificate2? Certificate { get; set; }

    protected override void EndProcessing()
    {
        var path = GetUnresolvedProviderPathFromPSPath(ImagePath);
        IPAddress address;
        try
        {
            address = IPAddress.TryParse(Address, out var literal) ? literal : Dns.GetHostAddresses(Address).First();
        }
        catch (Exception e) when (e is SocketException or ArgumentException or InvalidOperationException)
        {
            WriteError(new ErrorRecord(new ArgumentException($"'{Address}' is not an address of this machine: {e.Message}", e), "AddressInvalid", ErrorCategory.InvalidArgument, Address));
            return;
        }
        var options = new PageServerOptions
        {
            ImagePath = path,
            Address = address,
            Port = Port,
            Certificate = Certificate,
            CertificatePath = ParameterSetName == FromFile ? GetUnresolvedProviderPathFromPSPath(CertificatePath) : null,
            KeyPath = KeyPath is null ? null : GetUnresolvedProviderPathFromPSPath(KeyPath),
        };
        LazyPageServer server;
        try
        {
            server = LazyPageServer.Start(options);
        }
        catch (Exception e)
        {
            WriteError(ErrorRecords.From(e, path));
            return;
        }
        WriteVerbose($"Page server listening on {server.Address}:{server.Port}{(server.Tls ? $" with TLS (certificate {server.CertificateThumbprint})" : "")}, image directory {server.ImagePath}");
        WriteObject(server);
    }
}
