using System.Management.Automation;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using CriuPS.Completers;
using CriuPS.Engine.PageServer;
using CriuPS.Native.Memory;

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

    /// <summary>An image on this machine (a pre-dump received earlier) that the received dump builds on: it is linked to it.</summary>
    [Parameter]
    [ArgumentCompleter(typeof(ImageDirectoryCompleter))]
    public string? ParentImage { get; set; }

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

    /// <summary>The client certificates accepted (mutual TLS): a client must present one of them.</summary>
    [Parameter(ParameterSetName = FromFile)]
    [Parameter(ParameterSetName = FromObject)]
    public X509Certificate2[] ClientCertificate { get; set; } = [];

    /// <summary>The SHA-1 or SHA-256 thumbprints of the client certificates accepted.</summary>
    [Parameter(ParameterSetName = FromFile)]
    [Parameter(ParameterSetName = FromObject)]
    public string[] ClientThumbprint { get; set; } = [];

    /// <summary>Listen on a network address without authenticating clients: the network is trusted.</summary>
    [Parameter]
    public SwitchParameter TrustedNetwork { get; set; }

    /// <summary>Seconds a frame may take once begun, and a new connection to authenticate and say Hello.</summary>
    [Parameter]
    [ValidateRange(1, 3600)]
    public int FrameTimeout { get; set; } = (int)Defaults.FrameTimeout.TotalSeconds;

    /// <summary>Seconds a session may be silent between frames.</summary>
    [Parameter]
    [ValidateRange(1, 86400)]
    public int IdleTimeout { get; set; } = (int)Defaults.IdleTimeout.TotalSeconds;

    /// <summary>Connections held at once.</summary>
    [Parameter]
    [ValidateRange(1, 100_000)]
    public int MaxConnections { get; set; } = Defaults.MaxConnections;

    /// <summary>Image files one dump may send.</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int MaxImageFiles { get; set; } = Defaults.MaxImageFiles;

    /// <summary>Bytes one dump may send.</summary>
    [Parameter]
    [ValidateRange(1L << 20, long.MaxValue)]
    public long MaxImageSize { get; set; } = (long)Defaults.MaxImageSize.Value;

    private static readonly PageServerLimits Defaults = new();

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
            ParentImage = ParentImage is null ? null : GetUnresolvedProviderPathFromPSPath(ParentImage),
            Address = address,
            Port = Port,
            Certificate = Certificate,
            CertificatePath = ParameterSetName == FromFile ? GetUnresolvedProviderPathFromPSPath(CertificatePath) : null,
            KeyPath = KeyPath is null ? null : GetUnresolvedProviderPathFromPSPath(KeyPath),
            ClientCertificates = ClientCertificate,
            ClientThumbprints = ClientThumbprint,
            TrustedNetwork = TrustedNetwork,
            Limits = new PageServerLimits
            {
                FrameTimeout = TimeSpan.FromSeconds(FrameTimeout),
                IdleTimeout = TimeSpan.FromSeconds(IdleTimeout),
                MaxConnections = MaxConnections,
                MaxImageFiles = MaxImageFiles,
                MaxImageSize = new ByteCount((ulong)MaxImageSize),
            },
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
        if (!server.AuthenticatesClients && !IPAddress.IsLoopback(address))
        {
            WriteWarning($"The page server on {server.Address}:{server.Port} does not authenticate its clients: anyone who can reach it on this network (-TrustedNetwork) can send it a checkpoint and read the memory of the one it holds. Give it -ClientCertificate or -ClientThumbprint with a certificate to authenticate them.");
        }
        WriteVerbose($"Page server listening on {server.Address}:{server.Port}{(server.Tls ? $" with TLS (certificate {server.CertificateThumbprint})" : "")}, image directory {server.ImagePath}");
        WriteObject(server);
    }
}
