namespace CriuPS.Native.Ptrace;

/// <summary>
/// Threads kept for blocking kernel waits that a caller must be able to give up on (a wait with a deadline): the
/// blocking call runs here while the caller waits on an event with its deadline. Threads are reused, so that the
/// freeze of many threads does not start one thread per wait; a thread whose work never returns is simply not
/// given back.
/// </summary>
internal static class WaiterThreads
{
    // More idle threads than a freeze uses at once would only hold memory.
    private const int MostIdle = 4;
    private static readonly Stack<Worker> Idle = new();

    /// <summary>Runs <paramref name="work"/> on an idle waiter thread, or on a new one.</summary>
    public static void Run(Action work)
    {
        Worker? worker;
        lock (Idle)
        {
            Idle.TryPop(out worker);
        }
        (worker ?? new Worker()).Post(work);
    }

    private sealed class Worker
    {
        private readonly SemaphoreSlim posted = new(0);
        private Action? work;

        public Worker() => new Thread(Loop) { IsBackground = true, Name = "CriuPS stop waiter" }.Start();

        public void Post(Action next)
        {
            work = next;
            posted.Release();
        }

        private void Loop()
        {
            while (true)
            {
                posted.Wait();
                work!();
                work = null;
                lock (Idle)
                {
                    if (Idle.Count >= MostIdle)
                    {
                        return;
                    }
                    Idle.Push(this);
                }
            }
        }
    }
}
