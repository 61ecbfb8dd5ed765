using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Files;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// Descriptors in flight: files passed with SCM_RIGHTS that wait, with their message, in the receive queue of a unix
/// socket, where no process may hold them any more. As CRIU does, each is saved as a file of the tree (files.img)
/// and its message names it by id (scm entries of sk-queues.img); restore opens it in the engine and sends it again
/// with its message. A peek (MSG_PEEK) gives the engine a descriptor of each without taking anything from the
/// queue. Those copies stay open as long as this object: descriptions are told apart by comparing descriptors
/// (kcmp) with those already saved, and a closed copy's number could name something else by then.
/// </summary>
internal sealed class UnixInFlight : IDisposable
{
    private readonly List<FileDescriptor> copies = new();

    // The sockets whose queues the pre-flight check is looking at, further up the stack: a socket met again in flight
    // is a cycle.
    [ThreadStatic]
    private static HashSet<ulong>? looking;

    /// <summary>How many descriptors wait in flight in the queue of <paramref name="fd"/> of <paramref name="pid"/> (0 when it is closed meanwhile).</summary>
    public static int Count(int pid, int fd)
    {
        try
        {
            return int.TryParse(FdInfo.Read(pid, fd).Get("scm_fds"), out int count) ? count : 0;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>Our copies of the descriptors in flight in the queue of the socket (a descriptor of ours or of a process), oldest first.</summary>
    public IReadOnlyList<DescriptorProbe> Peek(int pid, int fd, UnixDiagSocket socket)
    {
        var found = new List<DescriptorProbe>();
        using var pidfd = Pidfd.Open(pid);
        using var queue = Pidfd.GetFd(pidfd, fd);
        UnixSocketQueue.Dump(queue, 0, socket, $"Process {pid}: fd {fd}: {UnixSocketName.Describe((uint)socket.Type, socket.Name)}", copy =>
        {
            copies.Add(copy);
            found.Add(ProbeOf(copy));
            return 0;
        });
        return found;
    }

    /// <summary>
    /// Why the descriptors in flight in the queue of a socket of the tree cannot be saved (the pre-flight check), or
    /// null; each is judged as a descriptor of its own, and a socket in flight by its own queue in turn.
    /// </summary>
    public static string? Problem(DescriptorProbe probe, UnixDiagSocket socket, DumpOptions options)
    {
        looking ??= new HashSet<ulong>();
        if (!looking.Add(probe.Status.Inode))
        {
            return "is in flight in its own queue, or in the queue of a socket in flight in its own (a cycle of descriptors in flight; not supported)";
        }
        try
        {
            using var inFlight = new UnixInFlight();
            var problems = new List<string>();
            foreach (var copy in inFlight.Peek(probe.Pid, probe.Fd, socket))
            {
                if (Unsavable(copy, options, out _) is { } problem)
                {
                    problems.Add(problem);
                }
            }
            return problems.Count == 0 ? null : $"has descriptors in flight (SCM_RIGHTS) that CriuPS cannot save: {string.Join("; ", problems.Distinct())}";
        }
        catch (NativeException e) when (e.Errno is Errno.ESRCH or Errno.EBADF)
        {
            return null; // closed meanwhile
        }
        finally
        {
            looking.Remove(probe.Status.Inode);
        }
    }

    /// <summary>
    /// Saves a descriptor in flight (our copy, which this object keeps open from now on) as a file of the tree, for
    /// <paramref name="carrier"/>, the process whose socket queues it; gives its id in files.img.
    /// </summary>
    public uint Save(DumpSession session, DumpedProcess carrier, FileDescriptor copy, string describe)
    {
        copies.Add(copy);
        var probe = ProbeOf(copy);
        if (Unsavable(probe, session.Options, out var kind) is { } problem)
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported,
                $"{describe} has in flight (SCM_RIGHTS) {problem}, which CriuPS cannot save.", carrier.Pid);
        }
        using var self = Pidfd.Open(Environment.ProcessId);
        return FileDescriptors.SaveDescription(session, carrier, probe, kind!, FdInfo.Read(probe.Pid, probe.Fd), self, out _);
    }

    private static DescriptorProbe ProbeOf(FileDescriptor copy) =>
        DescriptorProbe.Of(Environment.ProcessId, copy.Value) ?? throw new InvalidOperationException($"fd {copy.Value} of the engine vanished");

    // Why a descriptor in flight (our copy) cannot be saved, said of the file alone, or null; its kind when it can.
    private static string? Unsavable(DescriptorProbe probe, DumpOptions options, out FileKind? kind)
    {
        if (!FileDescriptors.TryClassify(probe, options, out kind, out var problem) || (problem = Refused(probe, kind)) is not null)
        {
            return WithoutNumber(problem, probe.Fd);
        }
        return null;
    }

    // Kinds whose restore needs the processes (a pidfd, a file under /proc/PID, a terminal of a restored session) or
    // finishes once the description is installed in one (epoll's registrations): a description in flight is opened
    // and sent again before any process exists.
    private static string? Refused(DescriptorProbe probe, FileKind kind) => kind.Type switch
    {
        FdTypes.Pidfd => $"fd {probe.Fd}: a pidfd (not supported in flight)",
        FdTypes.Eventpoll => $"fd {probe.Fd}: an epoll instance (not supported in flight: its registrations are made once it is installed in a process)",
        FdTypes.Tty => $"fd {probe.Fd}: the terminal {probe.Link} (not supported in flight)",
        _ when probe.Link.StartsWith("/proc/", StringComparison.Ordinal) => $"fd {probe.Fd}: {probe.Link} (a file of /proc, not supported in flight)",
        _ => null,
    };

    // The engine's number for a copy means nothing to the user: the problem is said of the file alone.
    private static string WithoutNumber(string problem, int fd) =>
        problem.StartsWith($"fd {fd}: ", StringComparison.Ordinal) ? problem[$"fd {fd}: ".Length..] : problem;

    public void Dispose()
    {
        foreach (var copy in copies)
        {
            copy.Dispose();
        }
        copies.Clear();
    }
}
