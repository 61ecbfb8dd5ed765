using CriuPS.Engine.Lazy;
using CriuPS.Engine.PageServer;

namespace CriuPS.Engine;

/// <summary>
/// What must not outlive this process's session: lazy restores still serving pages (their processes are killed,
/// as they cannot run without this process) and page servers (their sockets closed, their threads ended).
/// </summary>
public static class EngineShutdown
{
    public static void Run(string reason)
    {
        LazyTransfer.AbortAll(reason);
        LazyPageServer.StopAll();
    }
}
