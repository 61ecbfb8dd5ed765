using System.Management.Automation;
using CriuPS.Engine.Lazy;

namespace CriuPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Waits until lazily restored processes have every page, and reports transfers that failed.</para>
/// </summary>
[Cmdlet(VerbsLifecycle.Wait, "LazyRestore")]
[OutputType(typeof(LazyRestore))]
public sealed class WaitLazyRestoreCommand : PSCmdlet, IDisposable
{
    private static readonly TimeSpan Look = TimeSpan.FromMilliseconds(100);

    /// <summary>The transfers: from Restore-Process -LazyPages (its LazyRestore property binds by name).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    public LazyRestore[] LazyRestore { get; set; } = Array.Empty<LazyRestore>();

    /// <summary>Seconds to wait for each transfer; by default, as long as it takes.</summary>
    [Parameter]
    [Alias("TimeoutSec")]
    [ValidateRange(0, int.MaxValue)]
    public int? Timeout { get; set; }

    private readonly CancellationTokenSource stopping = new();

    /// <summary>Ctrl+C stops waiting; the transfers go on.</summary>
    protected override void StopProcessing() => stopping.Cancel();

    public void Dispose() => stopping.Dispose();

    protected override void ProcessRecord()
    {
        foreach (var restore in LazyRestore)
        {
            var deadline = Timeout is { } seconds ? DateTime.UtcNow.AddSeconds(seconds) : DateTime.MaxValue;
            while (!restore.Wait(Look))
            {
                if (stopping.IsCancellationRequested)
                {
                    return;
                }
                WriteProgress(new ProgressRecord(1, $"Lazy restore of process {restore.ProcessId}", $"{restore.PagesDone:N0} of {restore.PagesTotal:N0} pages")
                {
                    PercentComplete = (int)Math.Clamp(restore.PercentDone, 0, 100),
                });
                if (DateTime.UtcNow > deadline)
                {
                    WriteError(new ErrorRecord(
                        new TimeoutException($"The lazy restore of process {restore.ProcessId} is still running after {Timeout} s ({restore.PagesDone} of {restore.PagesTotal} pages)."),
                        "LazyRestoreTimeout", ErrorCategory.OperationTimeout, restore));
                    break;
                }
            }
            WriteProgress(new ProgressRecord(1, $"Lazy restore of process {restore.ProcessId}", "Done") { RecordType = ProgressRecordType.Completed });
            if (restore.State == LazyRestoreState.Failed && restore.Error is not null)
            {
                WriteError(ErrorRecords.From(restore.Error, restore.ProcessId));
            }
            WriteObject(restore);
        }
    }
}
