using System.Collections;
using System.Runtime.Intrinsics.X86;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Model;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Support;
using CriuPS.Native.Interop;
using Microsoft.Win32.SafeHandles;
using static CriuPS.Engine.EngineProcess.EngineProcessProtocol;

namespace CriuPS.Engine.EngineProcess;

/// <summary>
/// Runs a checkpoint in criups-engine, the engine compiled ahead of time, rather than in this process: a PowerShell
/// compiles and loads the engine's code the first time it runs it, which made a fresh session's first checkpoint of
/// a small process three times as long as its tenth. The program is started per checkpoint (posix_spawn: a few ms),
/// reports what it does as it goes, and ends with the same <see cref="CheckpointImage"/> as <see cref="DumpPipeline.Run"/>
/// returns, read back there from the image it wrote.
/// </summary>
public static class EngineProcessClient
{
    public const string ProgramName = "criups-engine";

    /// <summary>
    /// Whether criups-engine takes this checkpoint. Not a pre-dump, nor a checkpoint on top of a parent image, nor one
    /// of a process whose writes this session tracks: write tracking lives in the session that armed it (its
    /// userfaultfd), which must read and end it. Not a checkpoint to a page server (its certificates stay in the
    /// session), nor a move's dumps (the move holds the tree between them). Nor on a CPU older than the program's
    /// code (x86-64-v3, CriuPS.EngineProcess.csproj), which it would refuse to start on.
    /// </summary>
    public static bool Takes(DumpOptions options) =>
        options.PageServer is null && !options.PreDump && options.ParentImage is null && !options.HoldStopped && !options.LeaveLazyPages
        && !WriteTracking.Tracks(options.ProcessId) && RunsOnThisCpu;

    private static bool RunsOnThisCpu => Avx2.IsSupported && Bmi1.IsSupported && Bmi2.IsSupported && Fma.IsSupported && Lzcnt.IsSupported;

    /// <summary>Checkpoints as <see cref="DumpPipeline.Run"/> does, in criups-engine, when it <see cref="Takes"/> the options.</summary>
    public static CheckpointImage Run(DumpOptions options, IEngineObserver observer)
    {
        if (!Takes(options))
        {
            throw new ArgumentException("pre-dumps, checkpoints on top of a parent image or of a tracked process, to a page server and a move's dumps run in the session", nameof(options));
        }
        var program = ModuleProgram.Find(ProgramName, out string problem) ?? throw new CheckpointException(CheckpointErrorKind.DumpFailed,
            $"Process {options.ProcessId} was not checkpointed: {problem}.", options.ProcessId,
            "Reinstall the module (build.ps1 publishes criups-engine beside CriuPS.dll), or make the program executable.");
        var (requestRead, requestWrite) = FileDescriptor.Pipe(O.CLOEXEC);
        var (eventsRead, eventsWrite) = FileDescriptor.Pipe(O.CLOEXEC);
        int pid;
        try
        {
            // Capabilities this session holds by file (setcap on its binary) would be lost at exec: raised to ambient.
            using var passedOn = InheritedCapabilities.PassOn();
            pid = PosixSpawn.Spawn(program, [ProgramName], newSession: false, requestRead.Value, eventsWrite.Value, EnvironmentVariables());
        }
        catch
        {
            requestWrite.Dispose();
            eventsRead.Dispose();
            throw;
        }
        finally
        {
            requestRead.Dispose();
            eventsWrite.Dispose();
        }
        var engine = new RunningEngine(pid);
        using var events = new BinaryReader(new FileStream(new SafeFileHandle(eventsRead.Release(), ownsHandle: true), FileAccess.Read, 4096));
        var request = new FileStream(new SafeFileHandle(requestWrite.Release(), ownsHandle: true), FileAccess.Write, 4096);
        try
        {
            try
            {
                using var writer = new BinaryWriter(request, System.Text.Encoding.UTF8, leaveOpen: true);
                WriteDumpRequest(writer, options, Environment.ProcessId);
            }
            catch (IOException)
            {
                // The engine is gone already: its end is reported below, from its exit status.
            }
            // Ctrl+C: the end of its stdin cancels the engine's checkpoint, which releases the process; its report
            // (Cancelled) still comes.
            using var cancel = options.Cancellation.Register(request.Dispose);
            return engine.Relay(events, observer);
        }
        finally
        {
            request.Dispose();
            engine.Reap();
        }
    }

    private sealed class RunningEngine(int pid)
    {
        private WaitStatus? ended;

        public void Reap() => ended ??= Wait4.Wait(pid, 0);

        // Passes the engine's reports on until its last: the saved image, or its failure, thrown here.
        public CheckpointImage Relay(BinaryReader events, IEngineObserver observer)
        {
            while (true)
            {
                EventKind kind;
                try
                {
                    kind = (EventKind)events.ReadByte();
                }
                catch (EndOfStreamException)
                {
                    throw Lost();
                }
                switch (kind)
                {
                    case EventKind.Phase:
                        observer.Phase(events.ReadString());
                        break;
                    case EventKind.Progress:
                        observer.Progress(events.ReadString(), events.ReadInt64(), events.ReadInt64());
                        break;
                    case EventKind.Warning:
                        observer.Warning(events.ReadString());
                        break;
                    case EventKind.Detail:
                        observer.Detail(events.ReadString());
                        break;
                    case EventKind.Saved:
                        return CheckpointImageCodec.Read(events);
                    case EventKind.Failed:
                        throw ReadFailure(events);
                    default:
                        throw new InvalidDataException($"criups-engine (PID {pid}) reported something unknown ({(byte)kind}).");
                }
            }
        }

        // The engine ended without a last report: killed (by a signal, the OOM killer) or crashed. What it held is the
        // kernel's to let go: its tracees are detached as it dies, and the next checkpoint removes what it left behind.
        private CheckpointException Lost()
        {
            Reap();
            string how = ended is { Signaled: true } s ? $"was killed by signal {s.TermSignal}"
                : ended is { Exited: true } e ? $"exited with status {e.ExitCode}" : "ended";
            return new CheckpointException(CheckpointErrorKind.DumpFailed,
                $"criups-engine (PID {pid}), which ran the checkpoint, {how} before it finished; the processes it had frozen carry on.", null,
                "Look for what ended it (dmesg names the OOM killer's victims), then checkpoint again: the next checkpoint removes what this one left.");
        }
    }

    // The session's, as "NAME=value": test-only death points (CRIUPS_DIE_AT) reach the program that runs the dump.
    private static List<string> EnvironmentVariables()
    {
        var variables = new List<string>();
        foreach (DictionaryEntry variable in Environment.GetEnvironmentVariables())
        {
            variables.Add($"{variable.Key}={variable.Value}");
        }
        return variables;
    }
}
