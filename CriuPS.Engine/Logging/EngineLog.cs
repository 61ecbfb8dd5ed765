using System.Diagnostics;
using System.Text;

namespace CriuPS.Engine.Logging;

/// <summary>
/// The run's log: every line goes to a file (dump.log / restore.log, like CRIU's, with seconds since the start)
/// and phases, warnings and details also go to the observer. Phases are timed so that -Verbose says how long
/// each took. Lines may come from another thread too (a lazy restore's page transfer writes to restore.log).
/// </summary>
public sealed class EngineLog : IDisposable
{
    private readonly Stopwatch clock = Stopwatch.StartNew();
    private readonly IEngineObserver observer;
    private readonly List<string> warnings = new();
    private readonly object gate = new();
    private StreamWriter? file;
    private string? currentPhase;
    private TimeSpan currentPhaseStart;
    private JitWork currentPhaseJit;
    private GcWork currentPhaseGc;

    private readonly CancellationToken cancellation;

    /// <param name="observer">Who hears about phases, progress and warnings.</param>
    /// <param name="cancellation">Stops the run at the next phase or progress report (Ctrl+C).</param>
    public EngineLog(IEngineObserver observer, CancellationToken cancellation = default)
    {
        this.observer = observer;
        this.cancellation = cancellation;
    }

    /// <summary>Where the log is being written, once a file is attached.</summary>
    public string? FilePath { get; private set; }

    public IReadOnlyList<string> Warnings => warnings;

    public TimeSpan Elapsed => clock.Elapsed;

    /// <summary>Starts writing to <paramref name="path"/> (mode 0600), including what was logged before.</summary>
    public void AttachFile(string path, IEnumerable<string>? earlierLines = null)
    {
        var stream = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.Append,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        lock (gate)
        {
            file = new StreamWriter(stream, new UTF8Encoding(false)) { AutoFlush = false };
            FilePath = path;
            foreach (var line in earlierLines ?? buffered)
            {
                file.WriteLine(line);
            }
            buffered.Clear();
            file.Flush();
        }
    }

    /// <summary>The program a run is in and its PID, for the log's first line: a PowerShell (pwsh), or criups-engine.</summary>
    public static string RunningIn => $"{Path.GetFileName(Environment.ProcessPath)} (PID {Environment.ProcessId})";

    /// <summary>Moves the log file with its directory (the image directory is renamed at the end of a dump).</summary>
    public void Relocate(string newPath) => FilePath = newPath;

    private readonly List<string> buffered = new();

    /// <summary>A line for the log file only.</summary>
    public void Write(string message)
    {
        var line = $"({clock.Elapsed.TotalSeconds:00.000000}) {message}";
        lock (gate)
        {
            if (file is null)
            {
                buffered.Add(line);
            }
            else
            {
                file.WriteLine(line);
            }
        }
    }

    public void Detail(string message)
    {
        Write(message);
        observer.Detail(message);
    }

    public void Warning(string message)
    {
        Write("Warn: " + message);
        warnings.Add(message);
        observer.Warning(message);
    }

    public void Error(string message) => Write("Error: " + message);

    /// <summary>Starts a named phase; the previous one is reported with its duration.</summary>
    public void Phase(string name)
    {
        cancellation.ThrowIfCancellationRequested();
        EndPhase();
        currentPhase = name;
        currentPhaseStart = clock.Elapsed;
        currentPhaseJit = JitWork.SoFar();
        currentPhaseGc = GcWork.SoFar();
        Write($"==== {name}");
        observer.Phase(name);
    }

    public void EndPhase()
    {
        if (currentPhase is not null)
        {
            var took = clock.Elapsed - currentPhaseStart;
            var message = $"{currentPhase}: done in {took.TotalMilliseconds:F1} ms{JitWork.SoFar().Since(currentPhaseJit)}{GcWork.SoFar().Since(currentPhaseGc)}";
            Write(message);
            observer.Detail(message);
            currentPhase = null;
        }
    }

    public void Progress(string activity, long done, long total)
    {
        cancellation.ThrowIfCancellationRequested();
        observer.Progress(activity, done, total);
    }

    public void Flush()
    {
        lock (gate)
        {
            file?.Flush();
        }
    }

    public void Dispose()
    {
        EndPhase();
        lock (gate)
        {
            file?.Dispose();
            file = null;
        }
    }
}
