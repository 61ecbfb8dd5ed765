using System.Runtime.InteropServices;

namespace CriuPS.Init;

/// <summary>
/// PID 1 of a PID namespace made by Restore-Process -NewPidNamespace: criups-init ROOT, where ROOT is the PID (in the
/// namespace) of the restored tree's root, which the engine forks from this process once it runs. It waits for
/// signals and does what an init must: reaps every process that ends in the namespace (orphans are re-parented to
/// it), forwards each other signal it gets to every process of the namespace, and exits with the root's status when
/// the root ends (its code, or 128 + the signal that killed it), which ends the namespace with it.
/// The engine blocks every signal before it execs this program, so that no signal is lost before Main runs and the
/// runtime's own threads, which inherit that mask, never take one: a namespace's init ignores signals it has no
/// handler for, unless they are blocked and waited for, as here.
/// </summary>
internal static unsafe partial class Program
{
    private const int SigChld = 17, SigBlock = 0, WNoHang = 1;

    private static int Main(string[] args)
    {
        if (args.Length != 1 || !int.TryParse(args[0], out int root) || root <= 1)
        {
            return 2;
        }
        var set = stackalloc ulong[16]; // glibc's sigset_t: 1024 bits
        for (int i = 0; i < 16; i++)
        {
            set[i] = ulong.MaxValue;
        }
        sigprocmask(SigBlock, set, null);
        while (true)
        {
            int signal = sigwaitinfo(set, null);
            if (signal < 0)
            {
                continue; // interrupted (the engine stops this process while it forks the tree)
            }
            if (signal != SigChld)
            {
                kill(-1, signal); // every process of the namespace but this one
                continue;
            }
            int status;
            int ended;
            while ((ended = waitpid(-1, &status, WNoHang)) > 0)
            {
                if (ended == root)
                {
                    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
                }
            }
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sigprocmask(int how, ulong* set, ulong* old);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sigwaitinfo(ulong* set, void* info);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int waitpid(int pid, int* status, int options);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);
}
