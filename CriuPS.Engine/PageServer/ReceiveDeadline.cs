namespace CriuPS.Engine.PageServer;

/// <summary>
/// The server's bound on how long a client may keep it waiting: from the connection until its Hello (TLS handshake
/// included) it has <see cref="PageServerLimits.FrameTimeout"/>; then each frame, once begun, must be complete
/// within that time, and the session may be silent between frames for <see cref="PageServerLimits.IdleTimeout"/>.
/// A socket's receive timeout cannot say this: it bounds each read, and a client sending a byte just before each
/// read times out would hold the server for ever. So a watch ends the connection when a deadline passes: a thread
/// of its own, not a System.Threading.Timer, whose callback waits for a thread-pool thread and came seconds late
/// while the pool was busy (a 0.3 s deadline let a whole 2.4 s trickled frame through, under the test suite's load).
/// </summary>
internal sealed class ReceiveDeadline : IDisposable
{
    private readonly PageServerLimits limits;
    private readonly Action expire;
    private readonly object gate = new();
    private bool greeted;
    private bool disposed;
    // Environment.TickCount64 (monotonic) at which the client's time runs out; long.MaxValue while none runs.
    private long dueTick = long.MaxValue;
    private string waitingFor = "";

    /// <summary>Starts the handshake's deadline; <paramref name="expire"/> ends the connection.</summary>
    public ReceiveDeadline(PageServerLimits limits, Action expire)
    {
        this.limits = limits;
        this.expire = expire;
        Arm(limits.FrameTimeout, "did not finish its TLS handshake and Hello");
        new Thread(Watch, maxStackSize: 256 << 10) { IsBackground = true, Name = "criups-pagesrv deadline" }.Start();
    }

    /// <summary>What did not come in time, once the deadline passed (the connection is then closed).</summary>
    public string? Expired { get; private set; }

    /// <summary>The Hello is in: from now on, the frame and idle deadlines.</summary>
    public void Greeted()
    {
        lock (gate)
        {
            greeted = true;
            dueTick = long.MaxValue;
        }
    }

    /// <summary>Waiting for the next frame to begin.</summary>
    public void BetweenFrames()
    {
        if (greeted)
        {
            Arm(limits.IdleTimeout, "sent no frame");
        }
    }

    /// <summary>A frame's first byte arrived: the rest must follow soon.</summary>
    public void FrameBegun()
    {
        if (greeted)
        {
            Arm(limits.FrameTimeout, "did not finish a frame it began");
        }
    }

    /// <summary>A frame is complete: the server's own work on it is not the client's delay.</summary>
    public void FrameEnded()
    {
        if (greeted)
        {
            lock (gate)
            {
                dueTick = long.MaxValue;
            }
        }
    }

    public void Dispose()
    {
        lock (gate)
        {
            disposed = true;
            Monitor.Pulse(gate);
        }
    }

    private void Arm(TimeSpan limit, string what)
    {
        lock (gate)
        {
            waitingFor = $"{what} within {limit.TotalSeconds:0.###} s";
            dueTick = Environment.TickCount64 + (long)limit.TotalMilliseconds;
            Monitor.Pulse(gate);
        }
    }

    // Sleeps until the deadline, waking when it is moved; a deadline lifted or moved later is simply waited for
    // again. Ends with the connection (Dispose) or once it has expired it.
    private void Watch()
    {
        lock (gate)
        {
            while (!disposed)
            {
                long left = dueTick - Environment.TickCount64;
                if (left <= 0)
                {
                    Expired = waitingFor;
                    break;
                }
                Monitor.Wait(gate, dueTick == long.MaxValue ? Timeout.Infinite : (int)Math.Min(left, int.MaxValue));
            }
        }
        if (Expired is not null)
        {
            expire();
        }
    }
}
