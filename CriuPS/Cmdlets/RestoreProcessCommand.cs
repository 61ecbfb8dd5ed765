using System.Management.Automation;
using CriuPS.Completers;
using CriuPS.Engine.EngineProcess;
using CriuPS.Engine.Model;
using CriuPS.Engine.PageServer;
using CriuPS.Engine.Restore;

namespace CriuPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Brings processes back from checkpoint images, with their original PIDs.</para>
/// </summary>
[Cmdlet(VerbsData.Restore, "Process", DefaultParameterSetName = ByPath, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(System.Diagnostics.Process))]
public sealed class RestoreProcessCommand : PageServerClientCommand, IDisposable
{
    private const string ByPath = "Path";
    private const string ByImage = "InputObject";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = ByPath, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Path", "ImagesDirectory", "FullName", "PSPath")]
    [ArgumentCompleter(typeof(ImageDirectoryCompleter))]
    public string[] ImagePath { get; set; } = Array.Empty<string>();

    [Parameter(Mandatory = true, ParameterSetName = ByImage, ValueFromPipeline = true)]
    public CheckpointImage[] InputObject { get; set; } = Array.Empty<CheckpointImage>();

    [Parameter]
    public SwitchParameter Detach { get; set; }

    [Parameter]
    public SwitchParameter ShellJob { get; set; }

    /// <summary>Run the process before its private memory is back; the pages arrive on fault and in the background.</summary>
    [Parameter]
    public SwitchParameter LazyPages { get; set; }

    [Parameter]
    public SwitchParameter TcpEstablished { get; set; }

    [Parameter]
    public SwitchParameter TcpClose { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? NetworkNamespace { get; set; }

    [Parameter]
    [ValidateNotNull]
    public System.Collections.Hashtable? ExternalVeth { get; set; }

    /// <summary>The host path to bind at each external mount of a saved mount namespace, by key or mount point (CRIU's --external mnt[KEY]:PATH).</summary>
    [Parameter]
    [ValidateNotNull]
    public System.Collections.Hashtable? ExternalMount { get; set; }

    /// <summary>What becomes of the saved cgroups (CRIU's --manage-cgroups): Soft (the default), Full or Ignore.</summary>
    [Parameter]
    public CgroupMode CgroupMode { get; set; } = CgroupMode.Soft;

    /// <summary>Restore into a new PID namespace, the saved PIDs inside, under an init of its own.</summary>
    [Parameter]
    public SwitchParameter NewPidNamespace { get; set; }

    private readonly CancellationTokenSource stopping = new();
    private PageServerEndpoint? server;

    protected override void BeginProcessing()
    {
        server = ResolvePageServer();
        if (server is not null && !LazyPages)
        {
            Refuse("Pages come from a page server only during a lazy restore: add -LazyPages.");
        }
        if (ExternalVeth is not null && NetworkNamespace is not null)
        {
            Refuse("-ExternalVeth names the outer ends of the veth devices of a network namespace made from the image; with -NetworkNamespace none is made.");
        }
    }

    /// <summary>Ctrl+C: the engine stops at its next phase or batch of pages and cleans up.</summary>
    protected override void StopProcessing() => stopping.Cancel();

    public void Dispose() => stopping.Dispose();

    protected override void ProcessRecord()
    {
        var paths = ParameterSetName == ByImage
            ? InputObject.Select(i => i.Path)
            : ImagePath.Select(GetUnresolvedProviderPathFromPSPath);
        foreach (var path in paths)
        {
            if (!ShouldProcess(path, "Restore the checkpointed process"))
            {
                continue;
            }
            var options = new RestoreOptions
            {
                ImagePath = path,
                Detach = Detach,
                ShellJob = ShellJob,
                LazyPages = LazyPages,
                PageServer = server,
                TcpEstablished = TcpEstablished,
                TcpClose = TcpClose,
                NetworkNamespace = NetworkNamespace is null ? null : GetUnresolvedProviderPathFromPSPath(NetworkNamespace),
                ExternalVeth = ExternalVeth?.Cast<System.Collections.DictionaryEntry>()
                    .ToDictionary(e => e.Key.ToString()!, e => e.Value?.ToString() ?? "", StringComparer.Ordinal),
                ExternalMounts = ExternalMount?.Cast<System.Collections.DictionaryEntry>()
                    .ToDictionary(e => e.Key.ToString()!, e => GetUnresolvedProviderPathFromPSPath(e.Value?.ToString() ?? ""), StringComparer.Ordinal),
                CgroupMode = CgroupMode,
                NewPidNamespace = NewPidNamespace,
                FailAt = FailureInjection.RequestedPoint,
                Cancellation = stopping.Token,
            };
            RestoredProcess restored;
            try
            {
                restored = EngineRunner.Run(this, $"Restore from {path}", observer => EngineProcessClient.TakesRestore(options)
                    ? EngineProcessClient.Restore(options, observer) : RestorePipeline.Run(options, observer));
            }
            catch (Exception e)
            {
                WriteError(ErrorRecords.From(e, path));
                continue;
            }
            // Outside the try: a downstream Select-Object -First stops the pipeline with an exception that must pass.
            WriteObject(RestoredProcessView.For(restored));
        }
    }
}
