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

    /// <summary>
    /// Creates task <paramref name="tid"/> and returns it stopped; <paramref name="threadOf"/> is the process a new
    /// thread joins (its id as we see it). The tracee carries the id we see (ptrace's event message): in a PID
    /// namespace of the restore's own, <paramref name="tid"/> is the id inside, which the kernel gives too.
    /// </summary>
    public static Tracee Create(RemoteSyscaller caller, ScratchArea scratch, int tid, ulong flags, int exitSignal, int? threadOf = null) =>
        Create(caller, scratch, (int?)tid, flags, exitSignal, threadOf);

    /// <summary>Creates the init of a new PID namespace (<paramref name="flags"/> with CLONE_NEWPID), which is PID 1 there.</summary>
    public static Tracee CreateNamespaceInit(RemoteSyscaller caller, ScratchArea scratch, ulong flags, int exitSignal) =>
        Create(caller, scratch, null, flags, exitSignal, null);

    private static Tracee Create(RemoteSyscaller caller, ScratchArea scratch, int? tid, ulong flags, int exitSignal, int? threadOf)
    {
        scratch.Reset();
        var setTid = scratch.Put(tid ?? 0);
        var args = scratch.PutArray<ulong>(new ulong[]
        {
            flags,
            0, 0, 0,                 // pidfd, child_tid, parent_tid
            (ulong)exitSignal,
            0, 0, 0,                 // stack, stack_size, tls: the registers set at the end decide
            tid is null ? 0 : setTid.Value, tid is null ? 0UL : 1, // set_tid, set_tid_size
            0,                       // cgroup
        });
        long created = caller.Call(SyscallNumber.Clone3, args.Value, ArgsSize);
        string what = tid is null ? "the init of a new PID namespace" : $"task {tid}";
        if (created == -Errno.EEXIST)
        {
            throw new CheckpointException(CheckpointErrorKind.PidInUse, $"PID {tid} is in use by another process (perhaps a zombie).", tid ?? 0,
                $"Stop the process that holds PID {tid}, or restore after it has exited.");
        }
        if (created == -Errno.EPERM)
        {
            // The capability counts in the user namespace that owns the PID namespace, and in the task that forks.
            throw tid is null
                ? MissingPrivilege.For(Capability.SysAdmin, $"Creating {what} (clone3 with CLONE_NEWPID, in the task {caller.Thread.Tid})", caller.Thread.Tid,
                    new NativeException("clone3 with CLONE_NEWPID", Errno.EPERM))
                : MissingPrivilege.For(Capability.CheckpointRestore,
                    $"Giving task {tid} its saved id (clone3 with set_tid, in the task {caller.Thread.Tid} that forks it)", tid.Value,
                    new NativeException($"clone3 with set_tid {tid}", Errno.EPERM));
        }
        if (created < 0)
        {
            throw new NativeException($"clone3 of {what}", (int)-created);
        }
        // The event message is the new task's id in our namespace; clone3 returned the one in the forker's.
        int seen = caller.LastCreatedChild ?? (int)created;
        var task = Tracee.Adopt(seen, threadOf ?? seen);
        task.WaitForInterruptStop();
        return task;
    }
}
