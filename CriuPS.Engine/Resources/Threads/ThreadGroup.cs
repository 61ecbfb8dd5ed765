using CriuPS.Engine.Resources.Process;
using CriuPS.Engine.Restore;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Threads;

/// <summary>
/// Recreates the threads of a process: the leader runs clone3 with CLONE_THREAD and set_tid for each saved
/// thread id; the new thread, auto-attached by ptrace, starts stopped on our injection code and gets its own
/// state (registers last) like the leader.
/// </summary>
internal static class ThreadGroup
{
    private static readonly ulong ThreadFlags = (uint)(LibC.CLONE_VM | LibC.CLONE_FS | LibC.CLONE_FILES | LibC.CLONE_SIGHAND | LibC.CLONE_THREAD | LibC.CLONE_SYSVSEM);

    public static void CreateThreads(RestoringProcess process)
    {
        foreach (var (index, (_, core)) in process.Images.Cores.Index().Skip(1))
        {
            var levels = PidLevels.Thread(process.Images.Pstree, index);
            var thread = Clone3.Create(process.Caller, process.Injection.Scratch, levels, ThreadFlags, exitSignal: 0, threadOf: process.HostPid);
            Native.Interop.Ptrace.SetSigMask(thread.Tid, ulong.MaxValue);
            process.Threads.Add(new RestoringThread(thread, core, process.Injection.CallerFor(thread)));
        }
    }
}
