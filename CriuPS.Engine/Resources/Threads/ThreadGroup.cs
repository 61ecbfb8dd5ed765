using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Ptrace;

namespace CriuPS.Engine.Resources.Threads;

/// <summary>
/// Recreates the threads of a process: the leader runs clone3 with CLONE_THREAD and set_tid for each saved
/// thread id; the new thread, auto-attached by ptrace, starts stopped on our injection code and gets its own
/// state (registers last) like the leader.
/// </summary>
internal static class ThreadGroup
{
    private const ulong CloneVm = 0x100, CloneFs = 0x200, CloneFiles = 0x400, CloneSighand = 0x800, CloneThread = 0x10000, CloneSysvsem = 0x40000;

    public static void CreateThreads(RestoringProcess process)
    {
        var scratch = process.Injection.Scratch;
        foreach (var (tid, core) in process.Images.Cores.Skip(1))
        {
            scratch.Reset();
            var setTid = scratch.Put(tid);
            var args = scratch.PutArray<ulong>(new ulong[]
            {
                CloneVm | CloneFs | CloneFiles | CloneSighand | CloneThread | CloneSysvsem, // flags
                0, 0, 0,      // pidfd, child_tid, parent_tid
                0,            // exit_signal: threads have none
                0, 0, 0,      // stack, stack_size, tls: the registers set at the end decide
                setTid.Value, 1,
                0,
            });
            long created = process.Caller.Call(SyscallNumber.Clone3, args.Value, 11 * 8);
            if (created == -Errno.EEXIST)
            {
                throw new Errors.CheckpointException(Errors.CheckpointErrorKind.PidInUse, $"Thread id {tid} of process {process.Pid} is in use by another process.", tid);
            }
            if (created < 0)
            {
                throw new NativeException($"clone3 of thread {tid} in {process.Pid}", (int)-created);
            }
            var thread = Tracee.Adopt((int)created, process.Pid);
            thread.WaitForInterruptStop();
            Native.Interop.Ptrace.SetSigMask(thread.Tid, ulong.MaxValue);
            process.Threads.Add(new RestoringThread(thread, core, process.Injection.CallerFor(thread)));
        }
    }
}
