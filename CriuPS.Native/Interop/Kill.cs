using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>kill(2), for the processes the engine started itself and ends when it gives up on them.</summary>
public static class Kill
{
    /// <summary>
    /// Sends <paramref name="signal"/> to <paramref name="pid"/>; false when it is gone already (ESRCH). Those who call it
    /// are cleaning up: a process that is already gone needs nothing more.
    /// </summary>
    public static bool Send(int pid, int signal) => LibC.kill(pid, signal) == 0;
}
