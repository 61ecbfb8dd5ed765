using System.Collections.Concurrent;
using System.Management.Automation;
using CriuPS.Engine.Logging;

namespace CriuPS;

/// <summary>
/// Runs one engine operation on a thread of its own (ptrace binds tracees to the tracing thread, and the
/// pipeline thread must stay free to write) and relays what the engine reports to the cmdlet's verbose,
/// progress and warning streams, on the cmdlet's thread as PowerShell requires.
/// </summary>
internal sealed class EngineRunner : IEngineObserver
{
    private const int ProgressActivityId = 1;
    private readonly BlockingCollection<Action<PSCmdlet>> messages = new();
    private readonly string activity;
    private string phase = "Starting";

    private EngineRunner(string activity) => this.activity = activity;

    public static T Run<T>(PSCmdlet cmdlet, string activity, Func<IEngineObserver, T> operation)
    {
        var runner = new EngineRunner(activity);
        T? result = default;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = operation(runner);
            }
            catch (Exception e)
            {
                failure = e;
            }
            finally
            {
                runner.messages.CompleteAdding();
            }
        })
        {
            Name = "CriuPS engine",
            IsBackground = true,
        };
        thread.Start();
        PipelineStoppedException? stopped = null;
        foreach (var message in runner.messages.GetConsumingEnumerable())
        {
            if (stopped is not null)
            {
                continue;
            }
            try
            {
                message(cmdlet);
            }
            catch (PipelineStoppedException e)
            {
                // Ctrl+C: the cmdlet may write nothing more, but it returns only once the engine has seen the
                // cancellation and released the process and removed its partial image, not while it still does.
                stopped = e;
            }
        }
        thread.Join();
        if (stopped is not null)
        {
            throw stopped;
        }
        cmdlet.WriteProgress(new ProgressRecord(ProgressActivityId, activity, "Done") { RecordType = ProgressRecordType.Completed });
        if (failure is not null)
        {
            throw failure;
        }
        return result!;
    }

    public void Phase(string name)
    {
        phase = name;
        messages.Add(c =>
        {
            c.WriteVerbose(name);
            c.WriteProgress(new ProgressRecord(ProgressActivityId, activity, name));
        });
    }

    public void Progress(string what, long done, long total)
    {
        int percent = total > 0 ? (int)Math.Clamp(done * 100 / total, 0, 100) : 0;
        var status = $"{phase}: {what} {done:N0} of {total:N0}";
        messages.Add(c => c.WriteProgress(new ProgressRecord(ProgressActivityId, activity, status) { PercentComplete = percent }));
    }

    public void Warning(string message) => messages.Add(c => c.WriteWarning(message));

    public void Detail(string message) => messages.Add(c => c.WriteVerbose("  " + message));
}
