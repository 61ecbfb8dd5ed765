using System.Diagnostics;
using System.Management.Automation;
using CriuPS.Completers;
using CriuPS.Engine.Dump;
using CriuPS.Engine.EngineProcess;
using CriuPS.Engine.Model;
using CriuPS.Engine.PageServer;

namespace CriuPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Saves the complete state of running processes to checkpoint images.</para>
/// </summary>
[Cmdlet(VerbsData.Checkpoint, "Process", DefaultParameterSetName = ById, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(CheckpointImage), typeof(RemoteCheckpointImage))]
public sealed class CheckpointProcessCommand : PageServerClientCommand, IDisposable
{
    private const string ById = "Id";
    private const string ByProcess = "InputObject";
    private const string ByName = "Name";

    /// <summary>Benchmark knob: "1" writes no criups-digests.img, to measure what the digests cost (DumpOptions.SkipDigests).</summary>
    private const string NoDigestsVariable = "CRIUPS_BENCH_NO_DIGESTS";

    private int processCount;
    private readonly Dictionary<int, int> savedWithTree = new();

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = ById, ValueFromPipelineByPropertyName = true)]
    [Alias("Pid", "ProcessId")]
    [ValidateRange(1, int.MaxValue)]
    [ArgumentCompleter(typeof(ProcessIdCompleter))]
    public int[] Id { get; set; } = Array.Empty<int>();

    [Parameter(Mandatory = true, ParameterSetName = ByProcess, ValueFromPipeline = true)]
    public Process[] InputObject { get; set; } = Array.Empty<Process>();

    [Parameter(Mandatory = true, ParameterSetName = ByName)]
    [SupportsWildcards]
    [Alias("ProcessName")]
    [ArgumentCompleter(typeof(ProcessNameCompleter))]
    public string[] Name { get; set; } = Array.Empty<string>();

    [Parameter]
    [Alias("Path", "ImagesDirectory")]
    [ArgumentCompleter(typeof(ImageDirectoryCompleter))]
    public string? ImagePath { get; set; }

    [Parameter]
    public SwitchParameter LeaveRunning { get; set; }

    /// <summary>With -LeaveRunning: frozen only to save all but memory and protect it; memory is copied as it was at the freeze while the process runs.</summary>
    [Parameter]
    public SwitchParameter Background { get; set; }

    /// <summary>Saves memory only, while the process keeps running, and tracks its writes for the next checkpoint.</summary>
    [Parameter]
    public SwitchParameter PreDump { get; set; }

    /// <summary>An earlier pre-dump of the process (its path, or the image object): pages not written since are left to it.</summary>
    [Parameter]
    [ImagePathTransformation]
    [ArgumentCompleter(typeof(ImageDirectoryCompleter))]
    public string? ParentImage { get; set; }

    [Parameter]
    public SwitchParameter ShellJob { get; set; }

    [Parameter]
    public SwitchParameter TcpEstablished { get; set; }

    /// <summary>Save TCP listeners with connections not accepted yet, dropping those connections.</summary>
    [Parameter]
    public SwitchParameter SkipInFlight { get; set; }

    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Seconds each thread may take to stop when frozen.</summary>
    [Parameter]
    [ValidateRange(1, 3600)]
    public int FreezeTimeout { get; set; } = (int)DumpOptions.DefaultFreezeTimeout.TotalSeconds;

    /// <summary>A cgroup holding exactly the tree, frozen by the kernel while its tasks are seized (CRIU's --freeze-cgroup).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? FreezeCgroup { get; set; }

    /// <summary>The most disk space, in bytes, that a deleted file still open or mapped may take to be saved into the image.</summary>
    [Parameter]
    [ValidateRange(0, long.MaxValue)]
    public long GhostFileLimit { get; set; } = DumpOptions.DefaultGhostFileLimit;

    /// <summary>Keys of System V objects of the host's IPC namespace to save with the tree (semaphore sets, message queues, segments).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public int[]? IpcKey { get; set; }

    private readonly CancellationTokenSource stopping = new();
    private PageServerEndpoint? server;

    protected override void BeginProcessing()
    {
        server = ResolvePageServer();
        if (server is not null && (ImagePath is not null || Force))
        {
            Refuse("-ImagePath and -Force are about a local image directory; with -PageServer the images go to the server's directory.");
        }
    }

    /// <summary>Ctrl+C: the engine stops at its next phase or batch of pages and cleans up.</summary>
    protected override void StopProcessing() => stopping.Cancel();

    public void Dispose() => stopping.Dispose();

    protected override void ProcessRecord()
    {
        foreach (var (pid, name) in Targets())
        {
            // A checkpoint saves the whole tree below its process: `Get-Process app | Checkpoint-Process` or -Name
            // that matches a parent and its children saves the children with their parent, not again.
            if (savedWithTree.TryGetValue(pid, out int root))
            {
                WriteVerbose($"{name} ({pid}) is saved already, with the tree of process {root}.");
                continue;
            }
            Checkpoint(pid, name);
        }
    }

    private IEnumerable<(int Pid, string Name)> Targets()
    {
        switch (ParameterSetName)
        {
            case ByProcess:
                foreach (var process in InputObject)
                {
                    yield return (process.Id, SafeName(process));
                }
                break;
            case ByName:
                foreach (var pattern in Name)
                {
                    var wildcard = WildcardPattern.Get(pattern, WildcardOptions.IgnoreCase);
                    var matches = Process.GetProcesses().Where(p => wildcard.IsMatch(SafeName(p))).OrderBy(p => p.Id).ToList();
                    if (matches.Count == 0 && !WildcardPattern.ContainsWildcardCharacters(pattern))
                    {
                        WriteError(new ErrorRecord(new ItemNotFoundException($"No process named '{pattern}'."), "ProcessNotFound", ErrorCategory.ObjectNotFound, pattern));
                    }
                    foreach (var process in matches)
                    {
                        yield return (process.Id, SafeName(process));
                    }
                }
                break;
            default:
                foreach (var pid in Id)
                {
                    yield return (pid, NameOf(pid));
                }
                break;
        }
    }

    private void Checkpoint(int pid, string name)
    {
        processCount++;
        string? path = null;
        if (ImagePath is null && server is null)
        {
            path = Path.Combine(SessionState.Path.CurrentFileSystemLocation.ProviderPath, $"{name}-{pid}-{DateTime.Now:yyyyMMdd-HHmmss}");
        }
        else if (processCount > 1)
        {
            var what = server is null ? "-ImagePath names one image directory" : "-PageServer names a server that receives one image";
            WriteError(new ErrorRecord(
                new ArgumentException($"{what}, already used by the first process; process {pid} needs its own."),
                server is null ? "ImagePathShared" : "PageServerShared", ErrorCategory.InvalidArgument, pid)
            {
                ErrorDetails = new ErrorDetails($"{what}; process {pid} needs its own.")
                {
                    RecommendedAction = server is null ? "Omit -ImagePath to get one directory per process, or checkpoint one process per call." : "Checkpoint one process tree per page server.",
                },
            });
            return;
        }
        else if (ImagePath is not null)
        {
            path = GetUnresolvedProviderPathFromPSPath(ImagePath);
        }

        if (ParentImage is not null && processCount > 1)
        {
            WriteError(new ErrorRecord(
                new ArgumentException($"-ParentImage names the image of one process, already used by the first process; process {pid} has images of its own."),
                "ParentImageShared", ErrorCategory.InvalidArgument, pid)
            {
                ErrorDetails = new ErrorDetails($"-ParentImage names the image of one process; process {pid} has images of its own.") { RecommendedAction = "Checkpoint one process per call when you give -ParentImage." },
            });
            return;
        }

        var destination = path is null ? $"Send to the {server!.Description}" : "Save to " + path;
        var action = PreDump ? $"Save the memory to {path} while the process runs"
            : LeaveRunning ? destination : destination + " and end the process";
        if (!ShouldProcess($"{name} ({pid})", action))
        {
            return;
        }
        var options = new DumpOptions
        {
            ProcessId = pid,
            ImagePath = path ?? "",
            PageServer = server,
            LeaveRunning = LeaveRunning,
            Background = Background,
            PreDump = PreDump,
            ParentImage = ParentImage is null ? null : GetUnresolvedProviderPathFromPSPath(ParentImage),
            ShellJob = ShellJob,
            TcpEstablished = TcpEstablished,
            SkipInFlight = SkipInFlight,
            Force = Force,
            GhostFileLimit = GhostFileLimit,
            IpcKeys = IpcKey ?? [],
            FreezeTimeout = TimeSpan.FromSeconds(FreezeTimeout),
            FreezeCgroup = FreezeCgroup is null ? null : GetUnresolvedProviderPathFromPSPath(FreezeCgroup),
            FailAt = FailureInjection.RequestedPoint,
            SkipDigests = Environment.GetEnvironmentVariable(NoDigestsVariable) == "1",
            Cancellation = stopping.Token,
        };
        object image;
        try
        {
            image = EngineRunner.Run<object>(this, $"Checkpoint of {name} ({pid})",
                observer => server is not null ? DumpPipeline.RunToPageServer(options, observer)
                    : EngineProcessClient.TakesCheckpoint(options) ? EngineProcessClient.Checkpoint(options, observer) : DumpPipeline.Run(options, observer));
        }
        catch (Exception e)
        {
            WriteError(ErrorRecords.From(e, pid));
            return;
        }
        foreach (var saved in (image as CheckpointImage)?.Processes ?? Array.Empty<ImageProcess>())
        {
            savedWithTree.TryAdd(saved.Id, pid);
        }
        // Outside the try: a downstream Select-Object -First stops the pipeline with an exception that must pass.
        WriteObject(image);
    }

    private static string SafeName(Process process)
    {
        try
        {
            return process.ProcessName;
        }
        catch (InvalidOperationException)
        {
            return "process";
        }
    }

    private static string NameOf(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").Trim();
        }
        catch (IOException)
        {
            return "process";
        }
    }
}
