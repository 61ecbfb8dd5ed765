using CriuPS.Engine.Dump;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Resources.Sockets;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Migration;

/// <summary>
/// The processes of a move's final dump, left stopped on this machine while the other one restores them: ended once
/// the copy runs there, resumed here if it does not. Each is known by its PID and start time, so that a PID taken
/// by another process meanwhile is never signalled. A process that was stopped before the dump (SIGSTOP) was not
/// stopped by us and is never continued by us. Their TCP connections (a dump with -TcpEstablished) stay locked and
/// in repair mode meanwhile: taken out of it if they resume, closed silently if they are killed.
/// </summary>
public sealed class HeldTree
{
    private readonly IReadOnlyList<(int Pid, ulong StartTime)> stoppedByUs;
    private readonly IReadOnlyList<(int Pid, ulong StartTime)> all;
    private readonly InetSocketDump connections;
    private readonly EngineLog log;

    private HeldTree(IReadOnlyList<(int, ulong)> stoppedByUs, IReadOnlyList<(int, ulong)> all, InetSocketDump connections, EngineLog log)
    {
        this.stoppedByUs = stoppedByUs;
        this.all = all;
        this.connections = connections;
        this.log = log;
    }

    /// <summary>The PIDs held, root first.</summary>
    public IEnumerable<int> ProcessIds => all.Select(p => p.Pid);

    /// <summary>
    /// The processes of the frozen tree, about to be let go with SIGSTOP (PTRACE_DETACH delivers it: they stop before
    /// they run an instruction of their own).
    /// </summary>
    internal static HeldTree Of(FrozenTree tree, InetSocketDump connections, EngineLog log)
    {
        var stopped = new List<(int, ulong)>();
        var all = new List<(int, ulong)>();
        foreach (var process in tree.Processes)
        {
            var identity = (process.ProcessId, ProcStat.Read(process.ProcessId).StartTime);
            all.Add(identity);
            if (!process.WasStopped)
            {
                stopped.Add(identity);
            }
        }
        log.Write($"held stopped: {string.Join(", ", all.Select(p => p.Item1))}");
        return new HeldTree(stopped, all, connections, log);
    }

    /// <summary>The copy runs elsewhere: ends every process held here, and waits until they are gone.</summary>
    public void Kill(TimeSpan timeout)
    {
        // A pidfd of each names it even once its pid is free, and hangs up once it is reaped: the kernel wakes us.
        var held = all.Where(IsSame).Select(p => (p.Pid, Pidfd: Pidfd.TryOpen(p.Pid))).ToList();
        foreach (var (pid, _) in held)
        {
            Native.Interop.Kill.Send(pid, Signals.SIGKILL);
        }
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        foreach (var (_, pidfd) in held)
        {
            using (pidfd)
            {
                if (pidfd is not null)
                {
                    Pidfd.WaitReaped(pidfd, TimeSpan.FromMilliseconds(Math.Max(0, deadline - Environment.TickCount64)));
                }
            }
        }
        connections.Drop(log);
    }

    /// <summary>The move failed: lets the processes go on here as if nothing had happened.</summary>
    public void Resume()
    {
        connections.Resume(log);
        foreach (var (pid, _) in stoppedByUs.Where(IsSame))
        {
            Native.Interop.Kill.Send(pid, Signals.SIGCONT);
        }
    }

    private static bool IsSame((int Pid, ulong StartTime) process)
    {
        try
        {
            var stat = ProcStat.Read(process.Pid);
            return stat.StartTime == process.StartTime && stat.State is not 'Z' and not 'X';
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
