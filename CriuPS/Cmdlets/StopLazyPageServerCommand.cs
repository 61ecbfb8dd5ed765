using System.Management.Automation;
using CriuPS.Engine.PageServer;

namespace CriuPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Stops page servers started with Start-LazyPageServer: their sockets close and their threads end.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Stop, "LazyPageServer", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(LazyPageServer))]
public sealed class StopLazyPageServerCommand : PSCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    public LazyPageServer[] InputObject { get; set; } = Array.Empty<LazyPageServer>();

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        foreach (var server in InputObject)
        {
            if (server.State is PageServerState.Stopped or PageServerState.Failed || !ShouldProcess($"{server.Address}:{server.Port} ({server.ImagePath})", "Stop the page server"))
            {
                continue;
            }
            server.Stop();
            if (PassThru)
            {
                WriteObject(server);
            }
        }
    }
}
