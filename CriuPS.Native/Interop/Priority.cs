namespace CriuPS.Native.Interop;

/// <summary>getpriority(2) and setpriority(2) of one thread (PRIO_PROCESS with a thread id): its nice value.</summary>
public static class Priority
{
    private const ulong PrioProcess = 0;

    /// <summary>The thread's nice value (-20 to 19).</summary>
    public static int GetNice(int tid) =>
        // The raw system call answers 20 - nice, never negative (glibc's wrapper turns it back).
        20 - (int)Syscall.Checked("getpriority", SystemCall.Getpriority, PrioProcess, (ulong)tid);

    public static void SetNice(int tid, int nice) =>
        Syscall.Checked("setpriority", SystemCall.Setpriority, PrioProcess, (ulong)tid, unchecked((ulong)nice));
}
