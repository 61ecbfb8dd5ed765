using CriuPS.Native.Memory;

namespace CriuPS.Engine.PageServer;

/// <summary>
/// What a page server gives one client at most: how long it waits, how many connections it holds, how much one dump
/// may write. A client that goes past a limit is cut off (its dump is not kept); the others are not held up by it.
/// </summary>
public sealed record PageServerLimits
{
    /// <summary>
    /// How long a frame may take to arrive once its first byte has, and how long a new connection has to finish its
    /// TLS handshake and say Hello. A legitimate client sends a frame (at most 4 MiB) at network speed, so a few
    /// seconds are plenty; a client that trickles bytes is cut off after this, whatever it sends.
    /// </summary>
    public TimeSpan FrameTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a session may stay silent between frames. A dump's client is silent while it freezes and inspects
    /// the processes before the first file, and a lazy restore's between faults; the client itself gives up on a
    /// server silent for 30 s, so the same here.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = PageServerConnection.Timeout;

    /// <summary>
    /// Connections held at once, sessions and handshakes together. At the limit a new connection takes the place of
    /// the oldest one that has not said Hello yet (those are the ones an attacker can open without credentials);
    /// when every place is a session, it is refused.
    /// </summary>
    public int MaxConnections { get; init; } = 64;

    /// <summary>Image files one dump may send. A process has about 15, so this allows trees of hundreds of processes.</summary>
    public int MaxImageFiles { get; init; } = 10_000;

    /// <summary>
    /// Bytes one dump may send, all files together: by default this machine's memory and swap, plus a quarter (a
    /// checkpoint holds at most the memory of its processes, and an image this machine cannot hold cannot be
    /// restored here).
    /// </summary>
    public ByteCount MaxImageSize { get; init; } = DefaultImageSize();

    /// <summary>
    /// Image files open at once in one dump: the dump writes a few at a time (a pages file with its pagemap, the
    /// manifest); each open file costs a descriptor and buffers, so a client may not keep thousands open.
    /// </summary>
    public const int MaxOpenFiles = 32;

    private static ByteCount DefaultImageSize()
    {
        ulong kib = 0;
        foreach (var line in File.ReadLines("/proc/meminfo"))
        {
            if (line.StartsWith("MemTotal:", StringComparison.Ordinal) || line.StartsWith("SwapTotal:", StringComparison.Ordinal))
            {
                kib += ulong.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        return new ByteCount(kib * 1024 / 4 * 5);
    }

    /// <summary>Refuses limits that would make the server unusable (the cmdlet validates ranges first).</summary>
    internal void Validate()
    {
        if (FrameTimeout <= TimeSpan.Zero || IdleTimeout <= TimeSpan.Zero || MaxConnections < 1 || MaxImageFiles < 1 || MaxImageSize.Value == 0)
        {
            throw new ArgumentException($"The page server's limits must be positive: {this}.");
        }
    }
}
