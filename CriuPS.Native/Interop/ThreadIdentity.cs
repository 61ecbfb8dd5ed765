namespace CriuPS.Native.Interop;

/// <summary>
/// The effective user and group of the calling thread alone, through the raw setresuid/setresgid system calls (the
/// C library's wrappers change every thread of the process). The real and saved ids stay, so the thread gets its
/// effective capabilities back when its scope ends: what the kernel records of the thread that creates an object
/// (a System V object's creator cuid/cgid) can be any user's without the engine ever being that user.
/// </summary>
public static class ThreadIdentity
{
    private const ulong Unchanged = ulong.MaxValue; // -1: leave that id as it is

    /// <summary>Makes <paramref name="uid"/>/<paramref name="gid"/> the calling thread's effective ids until the scope is disposed.</summary>
    public static IDisposable Become(uint uid, uint gid)
    {
        uint previousUid = (uint)Syscall.Checked("geteuid", SystemCall.Geteuid);
        uint previousGid = (uint)Syscall.Checked("getegid", SystemCall.Getegid);
        if (previousUid == uid && previousGid == gid)
        {
            return AsItIs; // nothing to change, and no CAP_SETUID/CAP_SETGID needed
        }
        Syscall.Checked($"setresgid(-1, {gid}, -1)", SystemCall.Setresgid, Unchanged, gid, Unchanged);
        try
        {
            Syscall.Checked($"setresuid(-1, {uid}, -1)", SystemCall.Setresuid, Unchanged, uid, Unchanged);
        }
        catch
        {
            Syscall.Checked($"setresgid(-1, {previousGid}, -1)", SystemCall.Setresgid, Unchanged, previousGid, Unchanged);
            throw;
        }
        return new Back(previousUid, previousGid);
    }

    private static readonly IDisposable AsItIs = new NothingToUndo();

    private sealed class NothingToUndo : IDisposable
    {
        public void Dispose()
        {
        }
    }

    private sealed class Back(uint uid, uint gid) : IDisposable
    {
        public void Dispose()
        {
            // The user first: changing the group back needs the capability that being root again gives.
            Syscall.Checked($"setresuid(-1, {uid}, -1)", SystemCall.Setresuid, Unchanged, uid, Unchanged);
            Syscall.Checked($"setresgid(-1, {gid}, -1)", SystemCall.Setresgid, Unchanged, gid, Unchanged);
        }
    }
}
