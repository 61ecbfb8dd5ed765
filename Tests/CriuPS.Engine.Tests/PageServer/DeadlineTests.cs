using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CriuPS.Engine.PageServer;

namespace CriuPS.Engine.Tests.PageServer;

/// <summary>
/// What the server gives a client: its deadlines end a connection that trickles or says nothing (over a real TCP
/// connection, where a receive timeout per read would not), and its check of client certificates accepts only the
/// pinned ones.
/// </summary>
public class DeadlineTests
{
    private static readonly PageServerLimits Short = new() { FrameTimeout = TimeSpan.FromMilliseconds(300), IdleTimeout = TimeSpan.FromMilliseconds(500) };

    [Fact]
    public void AConnectionThatSaysNothingIsCutOffAtTheHandshakeDeadline()
    {
        using var pair = new SocketPair();
        var (error, _) = Receive(pair, greeted: false, client: _ => { });
        Assert.Contains("did not finish its TLS handshake and Hello within 0.3 s, and was cut off", error.Message);
    }

    [Fact]
    public void ASessionSilentBetweenFramesIsCutOffAtTheIdleDeadline()
    {
        using var pair = new SocketPair();
        var (error, seconds) = Receive(pair, greeted: true, client: _ => { });
        Assert.Contains("sent no frame within 0.5 s", error.Message);
        Assert.InRange(seconds, 0.4, 3);
    }

    [Fact]
    public void AFrameTrickledAByteAtATimeIsCutOffAtTheFrameDeadlineThoughEachByteComesInTime()
    {
        using var pair = new SocketPair();
        // A Done frame (13 bytes) at a byte every 200 ms: each read gets a byte well within any per-read timeout,
        // yet the frame would take 2.6 s. Its first byte is sent before the server waits, so that a busy machine slow
        // to start the client's thread cannot turn this into the idle deadline's case.
        var frame = new byte[] { 9, 0, 0, 0, (byte)FrameType.Done, 0, 0, 0, 0, 0, 0, 0, 0 };
        pair.Client.Send(frame[..1]);
        var (error, seconds) = Receive(pair, greeted: true, client: socket =>
        {
            foreach (byte b in frame[1..])
            {
                Thread.Sleep(200);
                try
                {
                    socket.Send(new[] { b });
                }
                catch (SocketException)
                {
                    return; // cut off
                }
            }
        });
        Assert.Contains("did not finish a frame it began within 0.3 s", error.Message);
        Assert.InRange(seconds, 0.25, 1.5);
    }

    [Fact]
    public void TheDeadlineFiresOnAThreadOfItsOwnNotOneThePoolMustFree()
    {
        // A thread-pool callback waits for a free pool thread: under the suite's load it came seconds late.
        bool? onPool = null;
        using var fired = new ManualResetEventSlim();
        var clock = Stopwatch.StartNew();
        using var deadline = new ReceiveDeadline(Short, () =>
        {
            onPool = Thread.CurrentThread.IsThreadPoolThread;
            fired.Set();
        });
        Assert.True(fired.Wait(TimeSpan.FromSeconds(10)));
        Assert.False(onPool);
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.25, 3);
        Assert.Equal("did not finish its TLS handshake and Hello within 0.3 s", deadline.Expired);
    }

    [Fact]
    public void ADeadlineEndedWithItsConnectionNeverFires()
    {
        int fired = 0;
        var deadline = new ReceiveDeadline(Short, () => Interlocked.Increment(ref fired));
        deadline.Dispose();
        Thread.Sleep(600);
        Assert.Equal(0, fired);
        Assert.Null(deadline.Expired);
    }

    [Fact]
    public void FramesThatComeInTimeAreReadWhateverTheSessionLasts()
    {
        using var pair = new SocketPair();
        using var deadline = new ReceiveDeadline(Short, () => pair.Server.Shutdown(SocketShutdown.Both));
        deadline.Greeted();
        var connection = new PageServerConnection(pair.Server, new NetworkStream(pair.Server), "client", deadline);
        var sender = new FrameStream(new NetworkStream(pair.Client));
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < 6; i++)
        {
            Thread.Sleep(200); // each within the idle deadline; together longer than either deadline
            PageServerMessages.SendDone(sender, (ulong)i);
            Assert.Equal((ulong)i, PageServerMessages.ReadDone(connection.Receive()));
        }
        Assert.True(clock.Elapsed > TimeSpan.FromSeconds(1));
        Assert.Null(deadline.Expired);
    }

    [Fact]
    public void AFrameLargerThanTheLimitIsRefusedBeforeAnythingIsAllocatedForIt()
    {
        var frames = new FrameStream(new MemoryStream(new byte[] { 0, 0, 0x40, 0, (byte)FrameType.Hello })) { Limit = 1024 };
        var error = Assert.Throws<ProtocolException>(() => frames.Read());
        Assert.Contains("A frame of 4194304 bytes is not valid here (1 to 1024)", error.Message);
    }

    [Fact]
    public void TheServerAcceptsOnlyThePinnedClientCertificates()
    {
        using var trusted = SelfSigned("trusted");
        using var byThumbprint = SelfSigned("by-thumbprint");
        using var stranger = SelfSigned("stranger");
        var sha256 = byThumbprint.GetCertHashString(HashAlgorithmName.SHA256);
        var check = new PageServerTls.ClientCheck(new[] { trusted }, new[] { string.Join(':', sha256.Chunk(2).Select(c => new string(c))) });

        Assert.True(check.Validate(this, trusted, null, System.Net.Security.SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.True(check.Validate(this, byThumbprint, null, System.Net.Security.SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.False(check.Validate(this, stranger, null, System.Net.Security.SslPolicyErrors.None));
        Assert.Equal($"it presented the client certificate CN=stranger, SHA-1 thumbprint {stranger.Thumbprint}, which this server does not trust", check.Refusal);
        Assert.False(check.Validate(this, null, null, System.Net.Security.SslPolicyErrors.RemoteCertificateNotAvailable));
        Assert.StartsWith("it presented no client certificate", check.Refusal);
    }

    // The server side receiving one frame from a client that runs CLIENT on its socket; the error it ends with, and
    // the seconds until then.
    private static (ProtocolException Error, double Seconds) Receive(SocketPair pair, bool greeted, Action<Socket> client)
    {
        var clock = Stopwatch.StartNew();
        using var deadline = new ReceiveDeadline(Short, () => pair.Server.Shutdown(SocketShutdown.Both));
        if (greeted)
        {
            deadline.Greeted();
        }
        var connection = new PageServerConnection(pair.Server, new NetworkStream(pair.Server), "client", deadline);
        var sending = Task.Factory.StartNew(() => client(pair.Client), TaskCreationOptions.LongRunning);
        var error = Assert.Throws<ProtocolException>(() => connection.Receive());
        var seconds = clock.Elapsed.TotalSeconds;
        sending.Wait(TimeSpan.FromSeconds(5));
        return (error, seconds);
    }

    private static X509Certificate2 SelfSigned(string name)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return request.CreateSelfSigned(DateTimeOffset.Now.AddMinutes(-5), DateTimeOffset.Now.AddDays(1));
    }

    /// <summary>Both ends of a TCP connection on the loopback.</summary>
    private sealed class SocketPair : IDisposable
    {
        public SocketPair()
        {
            using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(1);
            Client = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            Client.Connect(listener.LocalEndPoint!);
            Server = listener.Accept();
        }

        public Socket Client { get; }

        public Socket Server { get; }

        public void Dispose()
        {
            Client.Dispose();
            Server.Dispose();
        }
    }
}
