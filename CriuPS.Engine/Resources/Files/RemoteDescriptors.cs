using CriuPS.Engine.Restore;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// Descriptors the engine makes inside a restored process for a moment (a pidfd of the engine, a description pulled
/// with pidfd_getfd), kept above every number the process uses so that none lands on a number still to be filled.
/// </summary>
internal static class RemoteDescriptors
{
    /// <summary>Moves the process's <paramref name="fd"/> to its lowest free number at or above <paramref name="above"/> (close-on-exec) and closes the old one.</summary>
    public static int MoveAbove(this RemoteSyscaller caller, int fd, int above, string what)
    {
        int moved = caller.Checked($"fcntl(F_DUPFD_CLOEXEC) of {what}", RemoteCall.DuplicateCloseOnExec(fd, above));
        caller.Call(RemoteCall.Close(fd));
        return moved;
    }

    /// <summary>A pidfd of the engine in the process, at or above <paramref name="above"/>, to pull descriptors with pidfd_getfd.</summary>
    public static int OpenEnginePidfd(this RemoteSyscaller caller, RestoreSession session, int above)
    {
        return caller.MoveAbove(caller.Checked("pidfd_open of the engine", session.EnginePidfdCall), above, "the engine's pidfd");
    }
}
