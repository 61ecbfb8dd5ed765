namespace CriuPS.Engine.PageServer;

/// <summary>What a page server is doing.</summary>
public enum PageServerState
{
    /// <summary>Waiting for a dump to receive or a lazy restore to serve.</summary>
    Listening,

    /// <summary>A dump is streaming in.</summary>
    Receiving,

    /// <summary>A lazy restore is fetching pages.</summary>
    Serving,

    /// <summary>Stopped: by Stop-LazyPageServer, the end of the session, or by itself once a restore had every page.</summary>
    Stopped,

    /// <summary>The server could not go on (see Error); it no longer listens.</summary>
    Failed,
}
