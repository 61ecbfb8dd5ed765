using CriuPS.Native.Interop;

namespace CriuPS.Engine.Tests;

/// <summary>Starts throwaway target processes for tests and makes sure they are killed and reaped.</summary>
public sealed class TestProcess : IDisposable
{
    private TestProcess(int pid) => Pid = pid;

    public int Pid { get; }

    /// <summary>Starts `sleep` in a session of its own, and waits until it sleeps.</summary>
    public static TestProcess StartSleeper()
    {
        var process = new TestProcess(PosixSpawn.Spawn("/bin/sleep", new[] { "sleep", "1000" }, newSession: true));
        process.WaitForState('S');
        return process;
    }

    /// <summary>Starts a program in a session of its own.</summary>
    public static TestProcess Start(string path, params string[] arguments) =>
        new(PosixSpawn.Spawn(path, arguments.Prepend(Path.GetFileName(path)).ToList(), newSession: true));

    /// <summary>
    /// Runs a program to its end and tells how it ended: spawned and reaped here (wait4), not through
    /// System.Diagnostics.Process, whose wait for gcc hung once in CI beside this suite's tracing tests (gcc a zombie
    /// for minutes, never collected by the runtime).
    /// </summary>
    public static WaitStatus Run(string path, params string[] arguments)
    {
        // With this process's environment: gcc finds its assembler and linker on PATH.
        int pid = PosixSpawn.Spawn(path, arguments.Prepend(Path.GetFileName(path)).ToList(), newSession: true, environment: PosixSpawn.CurrentEnvironment());
        return Wait4.Wait(pid, 0)!.Value;
    }

    public char State => File.ReadAllText($"/proc/{Pid}/stat").Split(") ")[1][0];

    public void WaitForState(char state)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (State != state)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"process {Pid} did not reach state {state}");
            }
            Thread.Sleep(5);
        }
    }

    public void Dispose()
    {
        Tmds.Linux.LibC.kill(Pid, Signals.SIGKILL);
        try
        {
            Wait4.Wait(Pid, Wait4.WALL);
        }
        catch (NativeException e) when (e.Errno == Errno.ECHILD)
        {
            // Already reaped by whoever traced it last.
        }
    }
}
