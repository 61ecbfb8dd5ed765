using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Migration;
using CriuPS.Engine.Privileges;
using Tmds.Linux;

namespace CriuPS.Engine.PageServer;

/// <summary>
/// A page server of this process (Start-LazyPageServer): it listens on a thread of its own, receives a dump
/// streamed to it into its image directory, and serves that image's pages to a lazy restore. Each connection has a
/// thread of its own, so that no client holds up another: a client that trickles bytes or says nothing is cut off
/// by its deadlines (<see cref="PageServerLimits"/>) while the others are served. With client certificates to
/// trust, a client must present one of them in the TLS handshake, or it is refused before it can send anything.
/// Its counters move while it works. It stops when told to, when the session ends, or by itself once a lazy
/// restore it served has every page; stopping closes its sockets and ends its threads.
/// </summary>
public sealed class LazyPageServer
{
    private static readonly List<LazyPageServer> Servers = new();

    /// <summary>Ended servers stay listed for Get-LazyPageServer to show how they ended; a session that starts
    /// thousands (a migration loop) keeps only the newest of them, so the list does not grow without end.</summary>
    internal const int EndedServersKept = 32;
    private static readonly TimeSpan StopWait = TimeSpan.FromSeconds(10);
    private const int AcceptLookMicroseconds = 250_000;

    /// <summary>A Hello is a few dozen bytes: a client that has not said it gets no larger frame (nor buffer).</summary>
    private const int HelloLimit = 1024;

    private readonly Socket listener;
    private readonly SslServerAuthenticationOptions? tls;
    private readonly IReadOnlyList<X509Certificate2> clientCertificates;
    private readonly IReadOnlyList<string> clientThumbprints;
    private readonly Thread thread;
    private readonly object gate = new();
    private readonly List<Client> clients = new(); // under gate
    private volatile PageServerState ended = PageServerState.Listening; // Stopped or Failed once it is
    private volatile bool stopping;
    private int receiving;
    private int serving;
    private long pagesReceived;
    private long pagesServed;
    private long bytesReceived;
    private int imagesReceived;
    private long connectionsRefused;

    private readonly HeldMemory? held;

    private LazyPageServer(Socket listener, string imagePath, SslServerAuthenticationOptions? tls, string? thumbprint, PageServerOptions options, HeldMemory? held)
    {
        this.held = held;
        this.listener = listener;
        this.tls = tls;
        clientCertificates = options.ClientCertificates;
        clientThumbprints = options.ClientThumbprints;
        Limits = options.Limits;
        var bound = (IPEndPoint)listener.LocalEndPoint!;
        Address = bound.Address.ToString();
        Port = bound.Port;
        ImagePath = imagePath;
        ParentImage = options.ParentImage is null ? null : Path.GetFullPath(options.ParentImage);
        CertificateThumbprint = thumbprint;
        thread = new Thread(Run) { IsBackground = true, Name = "criups-pagesrv" };
    }

    public string Address { get; }

    public int Port { get; }

    /// <summary>The image directory it receives into and serves from.</summary>
    public string ImagePath { get; }

    /// <summary>The image the received dump is linked to as its parent, if any.</summary>
    public string? ParentImage { get; }

    /// <summary>Whether it speaks TLS.</summary>
    public bool Tls => tls is not null;

    /// <summary>Whether it accepts only clients that present a certificate it trusts (mutual TLS).</summary>
    public bool AuthenticatesClients => tls is not null && (clientCertificates.Count > 0 || clientThumbprints.Count > 0);

    /// <summary>The SHA-1 thumbprint of its certificate, for clients to trust (-PageServerThumbprint).</summary>
    public string? CertificateThumbprint { get; }

    /// <summary>Its deadlines and caps per client.</summary>
    public PageServerLimits Limits { get; }

    public PageServerState State =>
        ended != PageServerState.Listening ? ended
        : Volatile.Read(ref receiving) > 0 ? PageServerState.Receiving
        : Volatile.Read(ref serving) > 0 ? PageServerState.Serving
        : PageServerState.Listening;

    /// <summary>Pages received in pages images.</summary>
    public long PagesReceived => Interlocked.Read(ref pagesReceived);

    /// <summary>Pages served to lazy restores.</summary>
    public long PagesServed => Interlocked.Read(ref pagesServed);

    /// <summary>Bytes of image files received.</summary>
    public long BytesReceived => Interlocked.Read(ref bytesReceived);

    /// <summary>Dumps received and committed into the image directory.</summary>
    public int ImagesReceived => Volatile.Read(ref imagesReceived);

    /// <summary>Connections open now (sessions and handshakes); one given up for a newer one is closed already, while its thread ends.</summary>
    public int Connections
    {
        get
        {
            lock (gate)
            {
                return clients.Count(c => !c.Evicted);
            }
        }
    }

    /// <summary>
    /// Connections that ended without their session completing: a deadline, a limit, a failed authentication, a full
    /// server, a session that failed.
    /// </summary>
    public long ConnectionsRefused => Interlocked.Read(ref connectionsRefused);

    /// <summary>Whether the image directory holds an image to serve.</summary>
    public bool HasImage => File.Exists(Path.Combine(ImagePath, "inventory.img"));

    public DateTime Started { get; } = DateTime.Now;

    public DateTime? Stopped { get; private set; }

    /// <summary>The last failure: a session that broke off (the server listens on), or what made it fail.</summary>
    public CheckpointException? Error { get; private set; }

    /// <summary>Committing is one at a time: of two dumps received at once, the first to commit is the image.</summary>
    internal object CommitGate { get; } = new();

    /// <summary>The servers started in this process, oldest first: every running one, and the newest
    /// <see cref="EndedServersKept"/> that ended.</summary>
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
        options.Limits.Validate();
        var imagePath = Path.GetFullPath(options.ImagePath);
        if (File.Exists(imagePath))
        {
            throw new CheckpointException(CheckpointErrorKind.ImagePathUnusable, $"The image path '{imagePath}' is a file, not a directory.", imagePath, "Choose a directory path.");
        }
        // The checkpoint it receives is written beside the image path; better refused now than when it arrives.
        PathAccess.Demand(Path.GetDirectoryName(imagePath) ?? "/", "the directory of the image path", Native.Interop.Faccessat.Write | Native.Interop.Faccessat.Search);
        return Start(options, imagePath, held: null);
    }

    /// <summary>
    /// The source's server of a post-copy move: it receives no dump and serves the pages of the processes
    /// <paramref name="memory"/> holds (once it holds them) instead of an image's. Its options' image path is only
    /// what it is called by (Get-LazyPageServer).
    /// </summary>
    public static LazyPageServer StartForHeldMemory(PageServerOptions options, HeldMemory memory)
    {
        options.Limits.Validate();
        return Start(options, options.ImagePath, memory);
    }

    private static LazyPageServer Start(PageServerOptions options, string imagePath, HeldMemory? held)
    {
        var certificate = options.CertificatePath is { } file ? PageServerTls.LoadServerCertificate(file, options.KeyPath) : options.Certificate;
        bool trustsClients = options.ClientCertificates.Count > 0 || options.ClientThumbprints.Count > 0;
        if (trustsClients && certificate is null)
        {
            throw new ArgumentException("Client certificates are checked in the TLS handshake: give the server a certificate too.");
        }
        // Whoever reaches an unauthenticated server can write its image and read its pages (process memory): on the
        // loopback that is this machine's users, elsewhere the whole network, which only the user can vouch for.
        if (!trustsClients && !IPAddress.IsLoopback(options.Address) && !options.TrustedNetwork)
        {
            throw new CheckpointException(CheckpointErrorKind.PageServerUntrusted,
                $"A page server on {new IPEndPoint(options.Address, options.Port)} would accept any client that reaches it: it does not authenticate its clients.", options.Address,
                "Give the server a certificate and the clients' certificates to trust (-ClientCertificate or -ClientThumbprint), listen on the loopback, or say with -TrustedNetwork that only legitimate clients can reach it.");
        }
        if (held is null)
        {
            ImageDirectoryTransaction.RemoveStale(imagePath);
        }
        SslServerAuthenticationOptions? tls = null;
        if (certificate is not null)
        {
            PageServerTls.RequireKey(certificate, certificate.Subject);
            tls = new SslServerAuthenticationOptions
            {
                ServerCertificateContext = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true),
                ClientCertificateRequired = trustsClients,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            };
        }
        var listener = new Socket(options.Address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // SO_REUSEADDR alone: a server restarted on its port is not refused for the last one's closed
            // connections, yet a port another socket listens on stays refused (.NET's ReuseAddress would also set
            // SO_REUSEPORT, which lets two servers share a port).
            listener.SetRawSocketOption(LibC.SOL_SOCKET, LibC.SO_REUSEADDR, BitConverter.GetBytes(1));
            listener.Bind(new IPEndPoint(options.Address, options.Port));
            // Connections are accepted as fast as they come (each gets its own thread and deadline): the backlog only
            // bridges the moments between two accepts.
            listener.Listen(128);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new CheckpointException(CheckpointErrorKind.PageServerUnavailable,
                $"Cannot listen on {new IPEndPoint(options.Address, options.Port)}: {e.Message}.", options.Address,
                "Choose another port (or -Port 0 for any free one), or an address of this machine.", e);
        }
        var server = new LazyPageServer(listener, imagePath, tls, certificate?.Thumbprint, options, held);
        lock (Servers)
        {
            Servers.Add(server);
            ForgetOldestEnded();
        }
        server.thread.Start();
        return server;
    }

    /// <summary>Stops listening, breaks off the sessions in progress, and waits for the threads to end.</summary>
    public void Stop()
    {
        stopping = true;
        AbortClients();
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

    // Under the Servers lock.
    private static void ForgetOldestEnded()
    {
        var endedServers = Servers.Where(s => s.Stopped is not null).ToList();
        for (int i = 0; i < endedServers.Count - EndedServersKept; i++)
        {
            Servers.Remove(endedServers[i]);
        }
    }

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
                Admit(listener.Accept());
            }
            ended = PageServerState.Stopped;
        }
        catch (Exception e)
        {
            Error = new CheckpointException(CheckpointErrorKind.PageServerUnavailable, $"The page server on {Address}:{Port} failed: {e.Message}", ImagePath, null, e);
            ended = PageServerState.Failed;
        }
        finally
        {
            listener.Dispose();
            AbortClients();
            foreach (var client in Snapshot())
            {
                client.Thread.Join(StopWait);
            }
            Stopped = DateTime.Now;
            lock (Servers)
            {
                ForgetOldestEnded();
            }
        }
    }

    // A new connection gets a thread; at the limit it takes the place of the oldest that has not said Hello (a
    // client that authenticates and greets takes milliseconds; those that linger are what an attacker opens), or is
    // closed when every place is a session.
    private void Admit(Socket socket)
    {
        var client = new Client(socket);
        lock (gate)
        {
            if (clients.Count(c => !c.Evicted) >= Limits.MaxConnections)
            {
                var oldest = clients.Where(c => !c.Greeted && !c.Evicted).MinBy(c => c.Accepted);
                if (oldest is null)
                {
                    Interlocked.Increment(ref connectionsRefused);
                    socket.Close(0);
                    return;
                }
                oldest.Evicted = true;
                oldest.Abort();
            }
            clients.Add(client);
        }
        client.Thread = new Thread(() => Serve(client)) { IsBackground = true, Name = "criups-pagesrv" };
        client.Thread.Start();
    }

    private void Serve(Client client)
    {
        bool done = false;
        try
        {
            done = Session(client);
        }
        finally
        {
            client.Socket.Dispose();
            lock (gate)
            {
                clients.Remove(client);
            }
        }
        if (done && !stopping)
        {
            // A lazy restore has every page: the server's work is done.
            stopping = true;
            AbortClients();
        }
    }

    // One client, start to end; true when the server should stop. A session that fails is recorded, not fatal.
    private bool Session(Client client)
    {
        var peer = client.Socket.RemoteEndPoint?.ToString() ?? "a client";
        PageServerConnection? connection = null;
        var check = new PageServerTls.ClientCheck(clientCertificates, clientThumbprints);
        using var deadline = new ReceiveDeadline(Limits, client.Abort);
        int purpose = 0; // 1: receiving a dump, 2: serving pages (the counters behind State)
        try
        {
            client.Socket.NoDelay = true;
            client.Socket.SendTimeout = (int)Limits.IdleTimeout.TotalMilliseconds;
            Stream stream = new NetworkStream(client.Socket, ownsSocket: false);
            if (tls is not null)
            {
                // .NET asks the callback even when no certificate was asked for: only a server that authenticates
                // its clients judges them.
                var secure = new SslStream(stream, leaveInnerStreamOpen: false, AuthenticatesClients ? check.Validate : null);
                stream = secure;
                try
                {
                    secure.AuthenticateAsServer(tls);
                }
                catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or ObjectDisposedException)
                {
                    var why = check.Refusal is { } refusal ? $"the client was refused: {refusal}"
                        : deadline.Expired is { } late ? $"the client {late}"
                        : $"the TLS handshake failed ({e.Message.TrimEnd('.')}): a client that does not trust this server's certificate ends it so, and a client without TLS cannot start it";
                    throw new IOException(why + ".", e);
                }
            }
            connection = new PageServerConnection(client.Socket, stream, peer, deadline);
            connection.Frames.Limit = HelloLimit;
            var hello = PageServerMessages.ReadHello(connection.Receive());
            deadline.Greeted();
            client.Greeted = true;
            connection.Frames.Limit = FrameStream.MaxFrame;
            if (hello.Version != PageServerMessages.Version)
            {
                PageServerMessages.Send(connection.Frames, new ErrorMessage(RefusalCode.Version, $"this server speaks version {PageServerMessages.Version}, not {hello.Version}"));
                return false;
            }
            if (held is not null)
            {
                if (hello.Purpose == SessionPurpose.Dump)
                {
                    PageServerMessages.Send(connection.Frames, new ErrorMessage(RefusalCode.Refused, "this server serves the memory of held processes and receives no dump"));
                    throw new ProtocolException($"{peer} tried to send a dump to the server of held processes.");
                }
                Interlocked.Increment(ref serving);
                purpose = 2;
                return HeldMemoryServing.Serve(connection, this, held, hello.ImageId);
            }
            if (hello.Purpose == SessionPurpose.Dump)
            {
                Interlocked.Increment(ref receiving);
                purpose = 1;
                DumpReceiver.Receive(connection, this);
                return false;
            }
            Interlocked.Increment(ref serving);
            purpose = 2;
            return PageServing.Serve(connection, this, hello.ImageId);
        }
        catch (Exception e) when (!stopping && !client.Evicted)
        {
            Interlocked.Increment(ref connectionsRefused);
            Error = new CheckpointException(CheckpointErrorKind.PageServerUnavailable,
                    $"A session with {peer} broke off: {e.Message}{(purpose == 1 ? " Nothing it sent was kept." : "")}", ImagePath, null, e);
            if (connection?.ErrorSent == true)
            {
                // The client may still be sending: it gets the time to read why (recorded first, for Get-LazyPageServer).
                connection.LingerAfterError();
            }
            return false;
        }
        catch (Exception) when (stopping || client.Evicted)
        {
            if (client.Evicted)
            {
                Interlocked.Increment(ref connectionsRefused);
            }
            return false;
        }
        finally
        {
            if (purpose == 1)
            {
                Interlocked.Decrement(ref receiving);
            }
            else if (purpose == 2)
            {
                Interlocked.Decrement(ref serving);
            }
            connection?.Dispose();
        }
    }

    private Client[] Snapshot()
    {
        lock (gate)
        {
            return clients.ToArray();
        }
    }

    private void AbortClients()
    {
        foreach (var client in Snapshot())
        {
            client.Abort();
        }
    }

    /// <summary>One accepted connection and its thread.</summary>
    private sealed class Client
    {
        public Client(Socket socket) => Socket = socket;

        public Socket Socket { get; }

        public Thread Thread { get; set; } = null!;

        public DateTime Accepted { get; } = DateTime.UtcNow;

        /// <summary>It said Hello (after its TLS handshake): a session, never displaced by a new connection.</summary>
        public volatile bool Greeted;

        /// <summary>A new connection took its place.</summary>
        public volatile bool Evicted;

        /// <summary>Closes at once: its blocked send or receive fails, and its thread ends.</summary>
        public void Abort()
        {
            try
            {
                Socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // already closed: nothing to interrupt
            }
        }
    }
}
