using CriuPS.Engine.Errors;
using CriuPS.Native.Memory;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Migration;

/// <summary>
/// The memory of a post-copy move's processes, held stopped here after the final dump, as its page server reads it
/// for the copy on the destination (the pages the dump left behind). It serves only the final dump's run, only the
/// held processes, and records when the copy said it had every page: the held processes may end only after that.
/// </summary>
public sealed class HeldMemory : IDisposable
{
    private readonly Dictionary<int, ProcessMemory> memories = new();
    private readonly object gate = new();
    private long pagesSent;

    /// <param name="failAt">Test hook (CRIUPS_FAIL_AT): <see cref="FailurePoint.PostCopyLinkCut"/> breaks the connection after the first pages.</param>
    public HeldMemory(string? failAt = null) => FailAt = failAt;

    /// <summary>The final dump's run id (inventory.img): what the restore there asks for. Null until the dump holds the processes.</summary>
    public string? RunId { get; private set; }

    /// <summary>Pages sent to the copy.</summary>
    public long PagesSent => Interlocked.Read(ref pagesSent);

    /// <summary>When the copy said it has every page (its Done), or null.</summary>
    public DateTime? AllPagesArrived { get; private set; }

    internal string? FailAt { get; }

    /// <summary>The final dump holds <paramref name="held"/> stopped: from now on their memory is served to the restore of run <paramref name="runId"/>.</summary>
    public void Serve(HeldTree held, string runId)
    {
        lock (gate)
        {
            foreach (var pid in held.ProcessIds)
            {
                try
                {
                    memories[pid] = ProcessMemory.OpenForReading(pid);
                }
                catch (Native.Interop.NativeException e)
                {
                    throw new CheckpointException(CheckpointErrorKind.DumpFailed, $"The memory of held process {pid} cannot be opened to serve it ({e.Message}).", pid, null, e);
                }
            }
            RunId = runId;
        }
    }

    /// <summary>Reads pages of a held process; null when <paramref name="pid"/> is not one of them.</summary>
    internal byte[]? Read(int pid, Address address, int length)
    {
        ProcessMemory? memory;
        lock (gate)
        {
            memories.TryGetValue(pid, out memory);
        }
        if (memory is null)
        {
            return null;
        }
        try
        {
            var data = memory.Read(address, length);
            Interlocked.Add(ref pagesSent, length >> Page.Shift);
            return data;
        }
        catch (Native.Interop.NativeException e)
        {
            throw new CheckpointException(CheckpointErrorKind.PageServerUnavailable,
                $"The memory of held process {pid} at {address} cannot be read ({e.Message}): was it ended or continued by someone else?", pid, null, e);
        }
    }

    internal void Arrived() => AllPagesArrived = DateTime.Now;

    public void Dispose()
    {
        lock (gate)
        {
            foreach (var memory in memories.Values)
            {
                memory.Dispose();
            }
            memories.Clear();
        }
    }
}
