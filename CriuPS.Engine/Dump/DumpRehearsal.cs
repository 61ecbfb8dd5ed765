using System.Diagnostics;
using System.Runtime.CompilerServices;
using CriuPS.Engine.Logging;
using CriuPS.Native.Diagnostics;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Dump;

/// <summary>
/// The first checkpoint of a session runs code nothing has run before in this process: what ReadyToRun cannot
/// precompile (generic code of .NET's own assemblies over our types: dictionaries of registers, lists of address
/// ranges...) is compiled when it first runs, and without a rehearsal that is while the target is frozen (a fresh
/// PowerShell's first checkpoint of 64 threads compiled some 300 methods in its frozen window). So before its first
/// freeze, a session checkpoints once a process of its own that nobody needs (a sleep in a session of its own, into a
/// temporary directory, killed with the dump) and then freezes the target with that code compiled. The rehearsal
/// costs the first checkpoint of a session some time before the freeze, never during it; it never fails a checkpoint
/// (what goes wrong is logged and skipped). Test-only death points (CRIUPS_DIE_AT) turn it off: they count the
/// instants they pass, which are the target's to reach.
/// </summary>
internal static class DumpRehearsal
{
    private const string DirectoryPrefix = ".criups-rehearsal-";
    private static int started;

    /// <summary>Rehearses once per process; returns at once after the first call.</summary>
    public static void EnsureDone(EngineLog log)
    {
        if (Interlocked.Exchange(ref started, 1) != 0 || DeathPoint.IsArmed)
        {
            return;
        }
        if (!RuntimeFeature.IsDynamicCodeCompiled)
        {
            // criups-engine, compiled ahead of time: nothing is left to compile at the first freeze.
            log.Write("rehearsal: none needed, this engine is compiled ahead of time (criups-engine)");
            return;
        }
        var clock = Stopwatch.StartNew();
        RemoveLeftovers(log);
        var directory = Path.Combine(Path.GetTempPath(), $"{DirectoryPrefix}{Environment.ProcessId}");
        int sleeper = 0;
        FileDescriptor? handle = null;
        try
        {
            sleeper = StartSleeper();
            // Held from the start: the kill below must not reach another process that took the PID once it is gone.
            handle = Pidfd.Open(sleeper);
            DumpPipeline.Run(new DumpOptions { ProcessId = sleeper, ImagePath = directory, ShellJob = true, Force = true }, NullObserver.Instance);
            log.Write($"rehearsal: checkpointed a sleep of our own ({sleeper}) before the first freeze of this session, in {clock.Elapsed.TotalMilliseconds:F0} ms");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.Write($"rehearsal: skipped after {clock.Elapsed.TotalMilliseconds:F0} ms ({e.GetType().Name}: {e.Message})");
        }
        finally
        {
            if (handle is not null)
            {
                try
                {
                    Pidfd.SendSignal(handle, Signals.SIGKILL);
                }
                catch (NativeException)
                {
                    // gone already: the checkpoint went through and ended it
                }
                handle.Dispose();
            }
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
            }
        }
    }

    // A session killed while it rehearsed (kill -9 at any instant) leaves its directory, and perhaps a work directory
    // beside it: the next rehearsal on the machine removes those of sessions that are gone.
    private static void RemoveLeftovers(EngineLog log)
    {
        var temp = Path.GetTempPath();
        var gone = Directory.EnumerateDirectories(temp, $"{DirectoryPrefix}*")
            .Concat(Directory.EnumerateDirectories(temp, $".{DirectoryPrefix}*")) // work directories of a commit not made
            .Select(path => new string(Path.GetFileName(path).TrimStart('.')[(DirectoryPrefix.Length - 1)..].TakeWhile(char.IsAsciiDigit).ToArray()))
            .Select(digits => int.TryParse(digits, out int pid) ? pid : 0)
            .Where(pid => pid > 0 && pid != Environment.ProcessId && !Directory.Exists($"/proc/{pid}"))
            .Distinct()
            .ToList();
        foreach (int session in gone)
        {
            var left = Path.Combine(temp, $"{DirectoryPrefix}{session}");
            try
            {
                ImageDirectoryTransaction.RemoveStale(left);
                if (Directory.Exists(left))
                {
                    Directory.Delete(left, recursive: true);
                }
                log.Write($"rehearsal: removed {left}, left by a session that is gone");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                log.Write($"rehearsal: could not remove {left}, left by a session that is gone: {e.Message}");
            }
        }
    }

    // A sleep that is not our child (setsid -f forks it and exits, and init adopts it), so that no wait of ours or of
    // .NET's meets it. It leads its own session (the shell execs it), so that a move's rehearsal (MoveRehearsal)
    // restores it elsewhere as the move restores a daemon. Started with posix_spawn, not System.Diagnostics.Process:
    // that class's first use in a PowerShell cost a cold checkpoint 5 to 15 ms more.
    internal static int StartSleeper()
    {
        var setsid = SetsidPaths.FirstOrDefault(File.Exists) ?? throw new FileNotFoundException("no setsid program in /usr/bin or /bin");
        var (read, write) = FileDescriptor.Pipe(O.CLOEXEC);
        using (read)
        {
            int launcher;
            using (write)
            {
                launcher = PosixSpawn.Spawn(setsid, ["setsid", "-f", "sh", "-c", "echo $$; exec sleep 60 </dev/null >/dev/null 2>&1"],
                    newSession: false, stdout: write.Value);
            }
            string said = ReadAll(read);
            Wait4.Wait(launcher, Wait4.WALL); // setsid ends once it has forked the shell
            return int.TryParse(said.Trim(), System.Globalization.CultureInfo.InvariantCulture, out int pid)
                ? pid
                : throw new InvalidOperationException($"the shell named no sleep: '{said.Trim()}'");
        }
    }

    private static readonly string[] SetsidPaths = ["/usr/bin/setsid", "/bin/setsid"];

    // Up to the end: the shell's line, once it and setsid closed their ends (the sleep's output is /dev/null).
    private static string ReadAll(FileDescriptor read)
    {
        var text = new System.Text.StringBuilder();
        Span<byte> buffer = stackalloc byte[64];
        while (true)
        {
            long n = read.TryRead(buffer);
            if (n == -Errno.EINTR)
            {
                continue;
            }
            if (n <= 0)
            {
                return n == 0 ? text.ToString() : throw new NativeException("read", (int)-n);
            }
            text.Append(System.Text.Encoding.ASCII.GetString(buffer[..(int)n]));
        }
    }
}
