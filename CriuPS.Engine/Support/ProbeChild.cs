using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using Tmds.Linux;

namespace CriuPS.Engine.Support;

/// <summary>
/// A throwaway process for probes that need a thread to trace: sleep, in a session of its own, started without the
/// .NET runtime knowing it. Disposing kills it and reaps it by its PID (never any other child).
/// </summary>
internal sealed class ProbeChild : IDisposable
{
    private static readonly string[] SleepPaths = { "/bin/sleep", "/usr/bin/sleep" };

    private ProbeChild(int pid) => Pid = pid;

    public int Pid { get; }

    /// <summary>Starts sleep and waits until it sleeps (its C library has set itself up, rseq included).</summary>
    public static ProbeChild Start()
    {
        var sleep = SleepPaths.FirstOrDefault(File.Exists) ?? throw new FileNotFoundException("no sleep program in /bin or /usr/bin");
        var child = new ProbeChild(PosixSpawn.Spawn(sleep, new[] { "sleep", "60" }, newSession: true));
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (ProcStat.Read(child.Pid).State != 'S' && DateTime.UtcNow < deadline)
        {
            // The kernel tells only a tracer that a process entered a system call (a syscall stop), and the probes
            // seize this child themselves: a sleep it starts has no other sign than its state in /proc.
            Thread.Sleep(1);
        }
        return child;
    }

    public void Dispose()
    {
        Kill.Send(Pid, Signals.SIGKILL);
        try
        {
            while (true)
            {
                Wait4.Wait(Pid, Wait4.WALL);
            }
        }
        catch (NativeException e) when (e.Errno == Errno.ECHILD)
        {
            // reaped
        }
    }
}
