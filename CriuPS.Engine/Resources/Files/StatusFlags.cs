using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// The status flags of an open file description that F_SETFL changes (O_APPEND, O_ASYNC, O_DIRECT, O_NOATIME,
/// O_NONBLOCK). They belong to the description, not to the file: two descriptions of one pipe end or FIFO can differ,
/// so every recreated description is given exactly its own saved ones, whatever its kind and however it was made.
/// The engine sets them on its copy, but O_ASYNC: the kernel records the descriptor number F_SETFL is given with it
/// and names that number in the signal's si_fd, so the process sets it on its own descriptor once in place.
/// </summary>
internal static class StatusFlags
{
    private const int Changeable = O.APPEND | O.ASYNC | O.DIRECT | O.NOATIME | O.NONBLOCK;

    /// <summary>Descriptions that got O_ASYNC in their process already (through one of their descriptors).</summary>
    private sealed class AsyncSet
    {
        public HashSet<uint> Ids { get; } = new();
    }

    /// <summary>Gives <paramref name="description"/> the saved status flags but O_ASYNC; <paramref name="what"/> names it in an error.</summary>
    public static void Restore(FileDescriptor description, uint saved, string what)
    {
        int current = Fcntl.Call(description, Fcntl.F_GETFL);
        int wanted = (current & ~Changeable) | ((int)saved & Changeable & ~O.ASYNC);
        if (wanted == current)
        {
            return;
        }
        try
        {
            Fcntl.Call(description, Fcntl.F_SETFL, wanted);
        }
        catch (NativeException e)
        {
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed,
                $"The status flags {Describe((int)saved & Changeable)} of {what} cannot be set again: {Errno.Describe(e.Errno)}.", what, null, e);
        }
    }

    /// <summary>
    /// Sets O_ASYNC, in the process, on each of its descriptions saved with it (once per description, through its
    /// lowest descriptor): signals for I/O then name that descriptor.
    /// </summary>
    public static void RestoreAsync(RestoreSession session, RestoringProcess process, IEnumerable<FdinfoEntry> fds)
    {
        foreach (var fd in fds.OrderBy(f => f.Fd))
        {
            var file = session.Images.File(fd.Id);
            uint saved = FileKinds.For(file.Type)!.Saved(session.Images, file).Flags;
            if ((saved & O.ASYNC) != 0 && session.State<AsyncSet>().Ids.Add(fd.Id))
            {
                process.Caller.Checked($"fcntl(F_SETFL, O_ASYNC) of fd {fd.Fd}", RemoteCall.SetStatusFlags((int)fd.Fd, saved & Changeable));
            }
        }
    }

    private static string Describe(int flags)
    {
        var names = new (int Flag, string Name)[] { (O.APPEND, "O_APPEND"), (O.ASYNC, "O_ASYNC"), (O.DIRECT, "O_DIRECT"), (O.NOATIME, "O_NOATIME"), (O.NONBLOCK, "O_NONBLOCK") }
            .Where(f => (flags & f.Flag) != 0).Select(f => f.Name).ToList();
        return names.Count == 0 ? "(none)" : string.Join('|', names);
    }
}
