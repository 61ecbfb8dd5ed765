using CriuPS.Engine.Errors;
using CriuPS.Engine.Privileges;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Process;

/// <summary>
/// clone3 with set_tid, injected into a process or thread we control: the kernel gives the new task the saved id,
/// and ptrace (PTRACE_O_TRACEFORK/TRACECLONE) attaches it to us, stopped before it runs a single instruction.
/// </summary>
internal static class Clone3
{
    public const ulong CloneVm = 0x100, CloneFs = 0x200, CloneFiles = 0x400, CloneSighand = 0x800, CloneParent = 0x8000;
    public const ulong CloneThread = 0x10000, CloneSysvsem = 0x40000;
    private const int ArgsSize = 11 * 8;

    /// <summary>Creates task <paramref name="tid"/> and returns it stopped; <paramref name="threadOf"/> is the process a new thread joins.</summary>
    public static Tracee Create(RemoteSyscaller caller, ScratchArea scratch, int tid, ulong flags, int exitSignal, int? threadOf = null)
    {
        scratch.Reset();
        var setTid = scratch.Put(tid);
        var args = scratch.PutArray<ulong>(new ulong[]
        {
            flags,
            0, 0, 0,                 // pidfd, child_tid, parent_tid
            (ulong)exitSignal,
            0, 0, 0,                 // stack, stack_size, tls: the registers set at the end decide
            setTid.Value, 1,         // set_tid, set_tid_size
            0,                       // cgroup
        });
        long created = caller.Call(SyscallNumber.Clone3, args.Value, ArgsSize);
        if (created == -Errno.EEXIST)
        {
            throw new CheckpointException(CheckpointErrorKind.PidInUse, $"PID {tid} is in use by another process (perhaps a zombie).", tid,
                $"Stop the process that holds PID {tid}, or restore after it has exited.");
        }
        if (created == -Errno.EPERM)
        {
            // The capability counts in the user namespace that owns the PID namespace, and in the task that forks.
            throw MissingPrivilege.For(Capability.CheckpointRestore,
                $"Giving task {tid} its saved id (clone3 with set_tid, in the task {caller.Thread.Tid} that forks it)", tid,
                new NativeException($"clone3 with set_tid {tid}", Errno.EPERM));
        }
        if (created < 0)
        {
            throw new NativeException($"clone3 with set_tid {tid}", (int)-created);
        }
        var task = Tracee.Adopt((int)created, threadOf ?? (int)created);
        task.WaitForInterruptStop();
        return task;
    }
}
