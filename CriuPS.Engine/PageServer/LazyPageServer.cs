using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Privileges;

namespace CriuPS.Engine.PageServer;

/// <summary>
/// A page server of this process (Start-LazyPageServer): it listens on a thread of its own, receives a dump
/// streamed to it into its image directory, and serves that image's pages to a lazy restore, one connection at a
/// time. Its counters move while it works. It stops when told to, when the session ends, or by itself once a lazy
/// restore it served has every page; stopping closes its sockets and ends its thread.
/// </summary>
public sealed class LazyPageServer
{
    private static readonly List<LazyPageServer> Servers = new();
    private static readonly TimeSpan StopWait = TimeSpan.FromSeconds(10);
    private const int AcceptLookMicroseconds = 250_000;
    private const int SolSocket = 1;
    private const int SoReuseAddr = 2;

    private readonly Socket listener;
    private readonly SslServerAuthenticationOptions? tls;
    private readonly Thread thread;
    private readonly object gate = new();
    private volatile PageServerState state = PageServerState.Listening;
    private volatile bool stopping;
    private PageServerConnection? current;
    private long pagesReceived;
    private long pagesServed;
    private long bytesReceived;
    private int imagesReceived;

    private LazyPageServer(Socket listener, string imagePath, SslServerAuthenticationOptions? tls, string? thumbprint)
    {
        this.listener = listener;
        this.tls = tls;
        var bound = (IPEndPoint)listener.LocalEndPoint!;
        Address = bound.Address.ToString();
        Port = bound.Port;
        ImagePath = imagePath;
        CertificateThumbprint = thumbprint;
        thread = new Thread(Run) { IsBackground = true, Name = "criups-pagesrv" };
    }

    public string Address { get; }

    public int Port { get; }

    /// <summary>The image directory it receives into and serves from.</summary>
    public string ImagePath { get; }

    /// <summary>Whether it speaks TLS.</summary>
    public bool Tls => tls is not null;

    /// <summary>The SHA-1 thumbprint of its certificate, for clients to trust (-PageServerThumbprint).</summary>
    public string? CertificateThumbprint { get; }

    public PageServerState State => state;

    /// <summary>Pages received in pages images.</summary>
    public long PagesReceived => Interlocked.Read(ref pagesReceived);

    /// <summary>Pages served to lazy restores.</summary>
    public long PagesServed => Interlocked.Read(ref pagesServed);

    /// <summary>Bytes of image files received.</summary>
    public long BytesReceived => Interlocked.Read(ref bytesReceived);

    /// <summary>Dumps received and committed into the image directory.</summary>
    public int ImagesReceived => Volatile.Read(ref imagesReceived);

    /// <summary>Whether the image directory holds an image to serve.</summary>
    public bool HasImage => File.Exists(Path.Combine(ImagePath, "inventory.img"));

    public DateTime Started { get; } = DateTime.Now;

    public DateTime? Stopped { get; private set; }

    /// <summary>The last failure: a session that broke off (the server listens on), or what made it fail.</summary>
    public CheckpointException? Error { get; private set; }

    /// <summary>The servers started in this process, stopped ones included, oldest first.</summary>
    public static IReadOnlyList<LazyPageServer> All
    {
        get
        {
            lock (Servers)
            {
                return Servers.ToArray();
            }
        }
    }

    /// <summary>Binds, and starts listening in the background.</summary>
    public static LazyPageServer Start(PageServerOptions options)
    {
        var imagePath = Path.GetFullPath(options.ImagePath);
        if (File.Exists(imagePath))
        {
            throw new CheckpointException(CheckpointErrorKind.ImagePathUnusable, $"The image path '{imagePath}' is a file, not a directory.", imagePath, "Choose a directory path.");
        }
        // The checkpoint it receives is written beside the image path; better refused now than when it arrives.
        const int WriteAndSearch = Native.Interop.Faccessat.Write | Native.Interop.Faccessat.Search;
        if (PathAccess.Denial(Path.GetDirectoryName(imagePath) ?? "/", "the directory of the image path", WriteAndSearch) is { } denied)
        {
            throw denied;
        }
        ImageDirectoryTransaction.RemoveStale(imagePath);
        SslServerAuthenticationOptions? tls = null;
        var certificate = options.CertificatePath is { } file ? PageServerTls.LoadServerCertificate(file, options.KeyPath) : options.Certificate;
        if (certificate is not null)
        {
            PageServerTls.RequireKey(certificate, certificate.Subject);
            tls = new SslServerAuthenticationOptions
            {
                ServerCertificateContext = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true),
                ClientCertificateRequired = false,
            };
        }
        var listener = new Socket(options.Address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // SO_REUSEADDR alone: a server restarted on its port is not refused for the last one's closed
            // connections, yet a port another socket listens on stays refused (.NET's ReuseAddress would also set
            // SO_REUSEPORT, which lets two servers share a port).
            listener.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
            listener.Bind(new IPEndPoint(options.Address, options.Port));
            listener.Listen(4);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new CheckpointException(CheckpointErrorKind.PageServerUnavailable,
                $"Cannot listen on {new IPEndPoint(options.Address, options.Port)}: {e.Message}.", options.Address,
                "Choose another port (or -Port 0 for any free one), or an address of this machine.", e);
        }
        var server = new LazyPageServer(listener, imagePath, tls, certificate?.Thumbprint);
        lock (Servers)
        {
            Servers.Add(server);
        }
        server.thread.Start();
        return server;
    }

    /// <summary>Stops listening, breaks off a session in progress, and waits for the thread to end.</summary>
    public void Stop()
    {
        stopping = true;
        lock (gate)
        {
            current?.Abort();
        }
        if (Thread.CurrentThread != thread)
        {
            thread.Join(StopWait);
        }
    }

    /// <summary>Stops every server of this process (the session is ending).</summary>
    public static void StopAll()
    {
        foreach (var server in All)
        {
            server.Stop();
        }
    }

    public override string ToString() => $"{Address}:{Port} ({State})";

    internal void Received(string file, int bytes)
    {
        Interlocked.Add(ref bytesReceived, bytes);
        if (file.StartsWith("pages-", StringComparison.Ordinal))
        {
            Interlocked.Add(ref pagesReceived, bytes / Native.Memory.Page.Size);
        }
    }

    internal void Committed() => Interlocked.Increment(ref imagesReceived);

    internal void Served(uint pages) => Interlocked.Add(ref pagesServed, pages);

    private void Run()
    {
        try
        {
            while (!stopping)
            {
                if (!listener.Poll(AcceptLookMicroseconds, SelectMode.SelectRead) || stopping)
                {
                    continue;
                }
                using var client = listener.Accept();
                if (Session(client))
                {
                    break; // a lazy restore has every page: the server's work is done
                }
            }
            state = PageServerState.Stopped;
        }
        catch (Exception e)
        {
            Error = new CheckpointException(CheckpointErrorKind.PageServerUnavailable, $"The page server on {Address}:{Port} failed: {e.Message}", ImagePath, null, e);
            state = PageServerState.Failed;
        }
        finally
        {
            listener.Dispose();
            Stopped = DateTime.Now;
        }
    }

    // One client, start to end; true when the server should stop. A session that fails is recorded, not fatal.
    private bool Session(Socket client)
    {
        var peer = client.RemoteEndPoint?.ToString() ?? "a client";
        PageServerConnection? connection = null;
        try
        {
            PageServerConnection.LimitWaits(client);
            Stream stream = new NetworkStream(client, ownsSocket: false);
            if (tls is not null)
            {
                var secure = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = secure;
                using var timeout = new CancellationTokenSource(PageServerConnection.Timeout);
                try
                {
                    secure.AuthenticateAsServerAsync(tls, timeout.Token).GetAwaiter().GetResult();
                }
                catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or OperationCanceledException)
                {
                    throw new IOException($"the TLS handshake failed ({e.Message.TrimEnd('.')}): a client that does not trust this server's certificate ends it so, and a client without TLS cannot start it.", e);
                }
            }
            connection = new PageServerConnection(client, stream, peer);
            lock (gate)
            {
                if (stopping)
                {
                    return false;
                }
                current = connection;
            }
            var hello = PageServerMessages.ReadHello(connection.Receive());
            if (hello.Version != PageServerMessages.Version)
            {
                PageServerMessages.Send(connection.Frames, new ErrorMessage(RefusalCode.Version, $"this server speaks version {PageServerMessages.Version}, not {hello.Version}"));
                return false;
            }
            if (hello.Purpose == SessionPurpose.Dump)
            {
                state = PageServerState.Receiving;
                DumpReceiver.Receive(connection, this);
                return false;
            }
            state = PageServerState.Serving;
            return PageServing.Serve(connection, this, hello.ImageId);
        }
        catch (Exception e) when (!stopping)
        {
            Error = new CheckpointException(CheckpointErrorKind.PageServerUnavailable,
                $"A session with {peer} broke off: {e.Message}{(state == PageServerState.Receiving ? " Nothing it sent was kept." : "")}", ImagePath, null, e);
            return false;
        }
        catch (Exception) when (stopping)
        {
            return true;
        }
        finally
        {
            lock (gate)
            {
                current = null;
            }
            connection?.Dispose();
            if (state is PageServerState.Receiving or PageServerState.Serving)
            {
                state = PageServerState.Listening;
            }
        }
    }
}
