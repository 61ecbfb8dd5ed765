using System.Management.Automation;
using CriuPS.Engine.PageServer;

namespace CriuPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Lists the page servers started in this session, with their state and counters.</para>
/// </summary>
[Cmdlet(VerbsCommon.Get, "LazyPageServer")]
[OutputType(typeof(LazyPageServer))]
public sealed class GetLazyPageServerCommand : PSCmdlet
{
    /// <summary>Only the servers in these states.</summary>
    [Parameter(Position = 0)]
    public PageServerState[]? State { get; set; }

    protected override void EndProcessing() =>
        WriteObject(LazyPageServer.All.Where(s => State is null || State.Contains(s.State)), enumerateCollection: true);
}
