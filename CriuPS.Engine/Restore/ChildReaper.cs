using CriuPS.Native.Interop;

namespace CriuPS.Engine.Restore;

/// <summary>
/// Reaps restored processes that stay children of our process, when they exit, so that none lingers as a zombie. One
/// thread waits on an epoll set of their pidfds and reaps each only after its exit (waitid on the pidfd): a
/// waitpid-style wait could otherwise swallow the ptrace stops of a later checkpoint of the same process. The exit
/// statuses of the last <see cref="ExitsKept"/> children that ended are kept, for the objects that show them.
/// </summary>
public static class ChildReaper
{
    private const int ExitsKept = 1024;

    // How often a child that exited but is still held by its tracer is tried again.
    private const int HeldRetryMilliseconds = 2;

    private static readonly object Gate = new();
    private static readonly Dictionary<int, int?> ExitCodes = new();
    private static readonly Queue<int> Exited = new();
    private static readonly Dictionary<int, (int Pid, FileDescriptor Pidfd)> Watched = new();
    private static FileDescriptor? epoll;

    /// <summary>Starts watching a child; its exit status (the code, or 128 + the signal that killed it) becomes available from <see cref="TryGetExitCode"/>.</summary>
    public static void Watch(int pid)
    {
        var pidfd = Pidfd.Open(pid);
        lock (Gate)
        {
            if (epoll is null)
            {
                epoll = Epoll.Create();
                new Thread(Reap) { IsBackground = true, Name = "CriuPS reaper" }.Start();
            }
            ExitCodes[pid] = null;
            Watched[pidfd.Value] = (pid, pidfd);
            Epoll.AddInput(epoll, pidfd, (ulong)pidfd.Value);
        }
    }

    public static bool TryGetExitCode(int pid, out int? exitCode)
    {
        lock (Gate)
        {
            return ExitCodes.TryGetValue(pid, out exitCode);
        }
    }

    private static void Reap()
    {
        Span<ulong> ready = stackalloc ulong[16];
        // Children that exited while traced by another process (criups-engine, which checkpointed and killed them):
        // the kernel reports them to their tracer first, and to us once it lets them go, as it does in its last step.
        var held = new List<(int Pid, FileDescriptor Pidfd)>();
        while (true)
        {
            int n = Epoll.Wait(epoll!, ready, held.Count > 0 ? HeldRetryMilliseconds : -1);
            for (int i = 0; i < n; i++)
            {
                lock (Gate)
                {
                    if (Watched.Remove((int)ready[i], out var child))
                    {
                        Epoll.Remove(epoll!, child.Pidfd); // readable from now on: tried below until it can be reaped
                        held.Add(child);
                    }
                }
            }
            held.RemoveAll(TryReap);
        }
    }

    private static bool TryReap((int Pid, FileDescriptor Pidfd) child)
    {
        if (Waitid.ReapExited(child.Pidfd) is not { } code)
        {
            return false;
        }
        child.Pidfd.Dispose();
        lock (Gate)
        {
            ExitCodes[child.Pid] = code;
            Exited.Enqueue(child.Pid);
            while (Exited.Count > ExitsKept)
            {
                int oldest = Exited.Dequeue();
                if (ExitCodes.TryGetValue(oldest, out var kept) && kept is not null)
                {
                    ExitCodes.Remove(oldest); // unless the PID is watched again, as a newer child
                }
            }
        }
        return true;
    }
}
