using System.Management.Automation;
using System.Management.Automation.Runspaces;
using CriuPS.Completers;
using CriuPS.Engine.Migration;
using CriuPS.Engine.Model;
using CriuPS.Migration;

namespace CriuPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Moves a running process tree to another machine through a PowerShell session: pre-dump rounds while it runs, a short final freeze, restored there.</para>
/// </summary>
[Cmdlet(VerbsCommon.Move, "Process", DefaultParameterSetName = BySession, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(MovedProcess))]
public sealed class MoveProcessCommand : PSCmdlet, IDisposable
{
    private const string BySession = "Session";
    private const string ByHostName = "HostName";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Pid", "ProcessId")]
    [ValidateRange(1, int.MaxValue)]
    [ArgumentCompleter(typeof(ProcessIdCompleter))]
    public int Id { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = BySession)]
    public PSSession? Session { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = ByHostName)]
    public string HostName { get; set; } = "";

    [Parameter(ParameterSetName = ByHostName)]
    public string? UserName { get; set; }

    [Parameter(ParameterSetName = ByHostName)]
    public string? KeyFilePath { get; set; }

    /// <summary>With -HostName: SSH options for the session (New-PSSession -Options), such as UserKnownHostsFile.</summary>
    [Parameter(ParameterSetName = ByHostName)]
    public System.Collections.Hashtable? Options { get; set; }

    /// <summary>Pre-dump rounds at most before the final dump.</summary>
    [Parameter]
    [ValidateRange(0, 100)]
    public int MaxRounds { get; set; } = new MoveOptions { ProcessId = 1 }.MaxRounds;

    /// <summary>Milliseconds of freeze that end the rounds when a round predicts no more.</summary>
    [Parameter]
    [ValidateRange(1, 3_600_000)]
    public int MaxDowntime { get; set; } = (int)new MoveOptions { ProcessId = 1 }.MaxDowntime.TotalMilliseconds;

    /// <summary>Restore there lazily: the process runs once its state is there, its memory filled in behind it.</summary>
    [Parameter]
    public SwitchParameter Lazy { get; set; }

    /// <summary>
    /// Post-copy: no pre-dump rounds; the final dump sends everything but the memory a lazy restore can fill, the
    /// process runs there at once and pulls those pages from the source's memory, held stopped here until they have
    /// all arrived. A link lost meanwhile loses the process.
    /// </summary>
    [Parameter]
    public SwitchParameter PostCopy { get; set; }

    /// <summary>Seconds a lazy restore there may take to have every page.</summary>
    [Parameter]
    [ValidateRange(1, 86400)]
    public int LazyTimeout { get; set; } = 300;

    /// <summary>Carry the tree's established TCP connections: locked and in repair mode from the final dump, restored so there.</summary>
    [Parameter]
    public SwitchParameter TcpEstablished { get; set; }

    /// <summary>Move TCP listeners with connections not accepted yet, dropping those connections (at each dump).</summary>
    [Parameter]
    public SwitchParameter SkipInFlight { get; set; }

    /// <summary>
    /// Addresses of this machine that move with the tree (the ones its clients connect to): taken from their interface
    /// here once the tree runs there, given with the same prefix length to the interface that holds the session's address there.
    /// </summary>
    [Parameter]
    public System.Net.IPAddress[] ServiceAddress { get; set; } = [];

    /// <summary>The move's directory on the destination.</summary>
    [Parameter]
    public string? DestinationPath { get; set; }

    private readonly CancellationTokenSource stopping = new();

    protected override void StopProcessing() => stopping.Cancel();

    public void Dispose() => stopping.Dispose();

    protected override void ProcessRecord()
    {
        var opened = ParameterSetName == ByHostName ? OpenSession() : null;
        var session = Session ?? opened!;
        try
        {
            var directory = DestinationPath ?? $"/tmp/criups-move-{Id}-{Guid.NewGuid():N}";
            if (!ShouldProcess($"process {Id}", $"Move to {session.ComputerName} (through {directory} there) and end it here"))
            {
                return;
            }
            var moved = Move(new MoveDestination(session, directory, ServiceAddress, MyInvocation.MyCommand.Module.Path));
            if (moved is not null)
            {
                WriteObject(moved);
            }
        }
        finally
        {
            if (opened is not null)
            {
                InvokeCommand.InvokeScript("param($s) Remove-PSSession $s", true, PipelineResultTypes.None, null, opened);
            }
        }
    }

    private MovedProcess? Move(MoveDestination destination)
    {
        // The order lives in MoveSteps.Order; once the destination accepted, a step that fails undoes what the steps made.
        using var steps = new MoveSteps(this, destination, stopping.Token);
        return steps.Run();
    }

    private PSSession OpenSession()
    {
        var script = "param($HostName, $UserName, $KeyFilePath, $Options) $a = @{ HostName = $HostName; ErrorAction = 'Stop' }; if ($UserName) { $a.UserName = $UserName }; if ($KeyFilePath) { $a.KeyFilePath = $KeyFilePath }; if ($Options) { $a.Options = $Options }; New-PSSession @a";
        return (PSSession)InvokeCommand.InvokeScript(script, true, PipelineResultTypes.None, null, HostName, UserName, KeyFilePath, Options)[0].BaseObject;
    }
}
