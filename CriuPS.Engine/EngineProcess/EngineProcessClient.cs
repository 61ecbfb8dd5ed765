using System.Runtime.Intrinsics.X86;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Model;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Restore;
using CriuPS.Engine.Support;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using Microsoft.Win32.SafeHandles;
using static CriuPS.Engine.EngineProcess.EngineProcessProtocol;

namespace CriuPS.Engine.EngineProcess;

/// <summary>
/// Runs a checkpoint or a restore in criups-engine, the engine compiled ahead of time, rather than in this process: a
/// PowerShell compiles and loads the engine's code the first time it runs it, which made a fresh session's first
/// checkpoint of a small process three times as long as its tenth, and its first restore four times. The program is
/// started per operation (posix_spawn: a few ms), reports what it does as it goes, and ends with the same
/// <see cref="CheckpointImage"/> as <see cref="DumpPipeline.Run"/> returns (made there from the entries it wrote),
/// or the same <see cref="RestoredProcess"/> as <see cref="RestorePipeline.Run"/>.
/// </summary>
public static class EngineProcessClient
{
    public const string ProgramName = "criups-engine";

    /// <summary>
    /// Whether criups-engine takes this checkpoint. Not a pre-dump, nor a checkpoint on top of a parent image or of a
    /// process whose writes this session tracks: write tracking lives in the session that armed it (its
    /// userfaultfd), which must read and end it. Not a checkpoint to a page server (its certificates stay in the
    /// session), nor a move's dumps (the move holds the tree between them). Nor on a CPU older than the program's
    /// code (x86-64-v3, CriuPS.EngineProcess.csproj), which it would refuse to start on.
    /// </summary>
    public static bool TakesCheckpoint(DumpOptions options) =>
        options.PageServer is null && !options.PreDump && options.ParentImage is null && !options.HoldStopped && !options.LeaveLazyPages
        && !WriteTracking.Tracks(options.ProcessId) && RunsOnThisCpu;

    /// <summary>
    /// Whether criups-engine takes this restore. Not a lazy one (its page transfer serves the process from this session
    /// after the cmdlet returned), nor a shell job (the program's stdin and stdout are its pipes to the session, not
    /// the terminal), nor one into a new PID namespace (whose init would be the program's child, not the session's).
    /// The session starts the host and the program seizes it: only where the program may trace a process it did not
    /// start (kernel.yama.ptrace_scope 0 or no Yama; 1 or 2 with CAP_SYS_PTRACE). Nor on a CPU older than its code.
    /// </summary>
    public static bool TakesRestore(RestoreOptions options) =>
        !options.LazyPages && options.PageServer is null && !options.ShellJob && !options.NewPidNamespace && options.HostProcessId is null
        && MayTraceOthers(SessionPrivileges.Current()) && RunsOnThisCpu;

    private static bool RunsOnThisCpu => Avx2.IsSupported && Bmi1.IsSupported && Bmi2.IsSupported && Fma.IsSupported && Lzcnt.IsSupported;

    private static bool MayTraceOthers(SessionPrivileges session) =>
        session.YamaPtraceScope is null or 0 || (session.YamaPtraceScope is 1 or 2 && session.Has(Capability.SysPtrace));

    /// <summary>Checkpoints as <see cref="DumpPipeline.Run"/> does, in criups-engine, when it <see cref="TakesCheckpoint"/> the options.</summary>
    public static CheckpointImage Checkpoint(DumpOptions options, IEngineObserver observer)
    {
        if (!TakesCheckpoint(options))
        {
            throw new ArgumentException("pre-dumps, checkpoints on top of a parent image or of a tracked process, to a page server and a move's dumps run in the session", nameof(options));
        }
        var engine = RunningEngine.Start(Operation.Checkpoint, options.ProcessId);
        try
        {
            return engine.Run(w => WriteDumpRequest(w, options, Environment.ProcessId), EventKind.Saved, CheckpointImageCodec.Read, observer, options.Cancellation);
        }
        finally
        {
            engine.Reap();
        }
    }

    /// <summary>
    /// Restores as <see cref="RestorePipeline.Run"/> does, in criups-engine, when it <see cref="TakesRestore"/> the
    /// options. This session starts the host, which the program seizes: the root is forked from it with CLONE_PARENT,
    /// and so is this session's child, as with a restore in the session. The host is killed and reaped here
    /// whatever happens, and the root reaped when it ends (at once if the restore failed, which killed it).
    /// </summary>
    public static RestoredProcess Restore(RestoreOptions options, IEngineObserver observer)
    {
        if (!TakesRestore(options))
        {
            throw new ArgumentException("lazy restores, shell jobs, restores into a new PID namespace and those the engine may not trace for run in the session", nameof(options));
        }
        int host = RestoreHost.Spawn(shellJob: false);
        int? root = null;
        RunningEngine? engine = null;
        try
        {
            engine = RunningEngine.Start(Operation.Restore, target: null);
            var restored = engine.Run(w => WriteRestoreRequest(w, options, host), EventKind.Restored, RestoredProcessCodec.Read, observer, options.Cancellation,
                rootCreated: pid => root = pid);
            root = restored.Id;
            return restored;
        }
        finally
        {
            engine?.Reap(); // its tracees, the host among them, are let go (or killed) as it ends
            Kill.Send(host, Signals.SIGKILL);
            Wait4.Wait(host, 0);
            if (root is int child && !options.Detach)
            {
                ChildReaper.Watch(child);
            }
        }
    }

    /// <summary>
    /// What the program runs, as its failures name it: the error kind, and what is left when the program is lost
    /// midway and what to do then.
    /// </summary>
    private sealed record Operation(string Name, CheckpointErrorKind FailureKind, string WhenLost, string AdviceWhenLost)
    {
        public static readonly Operation Checkpoint = new("checkpoint", CheckpointErrorKind.DumpFailed,
            "the processes it had frozen carry on", "the next checkpoint removes what this one left");

        public static readonly Operation Restore = new("restore", CheckpointErrorKind.RestoreFailed,
            "nothing it made was left running", "the image is as it was");
    }

    private sealed class RunningEngine
    {
        private readonly int pid;
        private readonly Operation operation;
        private readonly FileDescriptor requestWrite;
        private readonly FileDescriptor eventsRead;
        private WaitStatus? ended;

        private RunningEngine(int pid, Operation operation, FileDescriptor requestWrite, FileDescriptor eventsRead)
        {
            this.pid = pid;
            this.operation = operation;
            this.requestWrite = requestWrite;
            this.eventsRead = eventsRead;
        }

        public static RunningEngine Start(Operation operation, int? target)
        {
            var program = ModuleProgram.Find(ProgramName, out string problem) ?? throw new CheckpointException(operation.FailureKind,
                $"criups-engine, which runs the {operation.Name}, cannot be started: {problem}.", target,
                "Reinstall the module (build.ps1 publishes criups-engine beside CriuPS.dll), or make the program executable.");
            var (requestRead, requestWrite) = FileDescriptor.Pipe(O.CLOEXEC);
            var (eventsRead, eventsWrite) = FileDescriptor.Pipe(O.CLOEXEC);
            try
            {
                // Capabilities this session holds by file (setcap on its binary) would be lost at exec: raised to ambient.
                using var passedOn = InheritedCapabilities.PassOn();
                // With the session's environment: test-only death points (CRIUPS_DIE_AT) reach the program that runs the dump.
                int pid = PosixSpawn.Spawn(program, [ProgramName], newSession: false, requestRead.Value, eventsWrite.Value, PosixSpawn.CurrentEnvironment());
                return new RunningEngine(pid, operation, requestWrite, eventsRead);
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
        }

        public void Reap() => ended ??= Wait4.Wait(pid, 0);

        /// <summary>
        /// Sends the request, then passes the engine's reports on until its last: the result, read with
        /// <paramref name="readResult"/>, or its failure, thrown here. Ctrl+C (<paramref name="cancellation"/>) ends
        /// the engine's stdin, which cancels its operation; its report (Cancelled) still comes. A restore tells
        /// <paramref name="rootCreated"/> its root's PID as soon as the root exists.
        /// </summary>
        public T Run<T>(Action<BinaryWriter> writeRequest, EventKind resultKind, Func<BinaryReader, T> readResult, IEngineObserver observer, CancellationToken cancellation,
            Action<int>? rootCreated = null)
        {
            using var events = new BinaryReader(new FileStream(new SafeFileHandle(eventsRead.Release(), ownsHandle: true), FileAccess.Read, 4096));
            using var request = new FileStream(new SafeFileHandle(requestWrite.Release(), ownsHandle: true), FileAccess.Write, 4096);
            try
            {
                using var writer = new BinaryWriter(request, System.Text.Encoding.UTF8, leaveOpen: true);
                writeRequest(writer);
            }
            catch (IOException)
            {
                // The engine is gone already: its end is reported below, from its exit status.
            }
            using var cancel = cancellation.Register(request.Dispose);
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
                    case EventKind.RootCreated:
                        rootCreated?.Invoke(events.ReadInt32());
                        break;
                    case EventKind.Failed:
                        throw ReadFailure(events);
                    case var last when last == resultKind:
                        return readResult(events);
                    default:
                        throw new InvalidDataException($"criups-engine (PID {pid}) reported something unknown ({(byte)kind}).");
                }
            }
        }

        // The engine ended without a last report: killed (by a signal, the OOM killer) or crashed. What it held is the
        // kernel's to let go: its tracees are detached as it dies (a restore's are killed: PTRACE_O_EXITKILL).
        private CheckpointException Lost()
        {
            Reap();
            string how = ended is { Signaled: true } s ? $"was killed by signal {s.TermSignal}"
                : ended is { Exited: true } e ? $"exited with status {e.ExitCode}" : "ended";
            return new CheckpointException(operation.FailureKind,
                $"criups-engine (PID {pid}), which ran the {operation.Name}, {how} before it finished; {operation.WhenLost}.", null,
                $"Look for what ended it (dmesg names the OOM killer's victims), then try again: {operation.AdviceWhenLost}.");
        }
    }
}
