namespace CriuPS.Engine.PageServer;

/// <summary>
/// The server's bound on how long a client may keep it waiting: from the connection until its Hello (TLS handshake
/// included) it has <see cref="PageServerLimits.FrameTimeout"/>; then each frame, once begun, must be complete
/// within that time, and the session may be silent between frames for <see cref="PageServerLimits.IdleTimeout"/>.
/// A socket's receive timeout cannot say this: it bounds each read, and a client sending a byte just before each
/// read times out would hold the server for ever. So a timer ends the connection when a deadline passes.
/// </summary>
internal sealed class ReceiveDeadline : IDisposable
{
    private readonly PageServerLimits limits;
    private readonly Action expire;
    private readonly Timer timer;
    private readonly object gate = new();
    private bool greeted;
    private DateTime due = DateTime.MaxValue;
    private string waitingFor = "";

    /// <summary>Starts the handshake's deadline; <paramref name="expire"/> ends the connection.</summary>
    public ReceiveDeadline(PageServerLimits limits, Action expire)
    {
        this.limits = limits;
        this.expire = expire;
        timer = new Timer(_ => Fire());
        Arm(limits.FrameTimeout, "did not finish its TLS handshake and Hello");
    }

    /// <summary>What did not come in time, once the deadline passed (the connection is then closed).</summary>
    public string? Expired { get; private set; }

    /// <summary>The Hello is in: from now on, the frame and idle deadlines.</summary>
    public void Greeted()
    {
        lock (gate)
        {
            greeted = true;
            due = DateTime.MaxValue;
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
                due = DateTime.MaxValue;
            }
        }
    }

    public void Dispose() => timer.Dispose();

    private void Arm(TimeSpan limit, string what)
    {
        lock (gate)
        {
            waitingFor = $"{what} within {limit.TotalSeconds:0.###} s";
            due = DateTime.UtcNow + limit;
            timer.Change(limit, Timeout.InfiniteTimeSpan);
        }
    }

    // A frame's end lifts the deadline without stopping the timer: when it fires it finds none, or a later one (set
    // again for what is left).
    private void Fire()
    {
        lock (gate)
        {
            if (due == DateTime.MaxValue || Expired is not null)
            {
                return;
            }
            var left = due - DateTime.UtcNow;
            if (left > TimeSpan.Zero)
            {
                timer.Change(left, Timeout.InfiniteTimeSpan);
                return;
            }
            Expired = waitingFor;
        }
        expire();
    }
}
