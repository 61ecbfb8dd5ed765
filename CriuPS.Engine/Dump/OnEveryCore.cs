using System.Runtime.ExceptionServices;

namespace CriuPS.Engine.Dump;

/// <summary>
/// Reads of /proc about many processes (their descriptors, their areas), spread over every core: each read is a few
/// system calls of microseconds, and a tree of processes has thousands of them.
/// </summary>
internal static class OnEveryCore
{
    /// <summary>
    /// <paramref name="read"/> of each process, in the order given. A failure is thrown as the read threw it (the
    /// first one, not wrapped), so that callers tell a process gone from a real failure as they do for one read.
    /// </summary>
    public static T[] Read<T>(IReadOnlyList<int> pids, Func<int, T> read)
    {
        var results = new T[pids.Count];
        try
        {
            Parallel.For(0, pids.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i => results[i] = read(pids[i]));
        }
        catch (AggregateException e)
        {
            ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }
        return results;
    }
}
