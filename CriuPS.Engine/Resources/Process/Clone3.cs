using CriuPS.Engine.Errors;
using CriuPS.Engine.Privileges;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Process;

/// <summary>
/// clone3 with set_tid, injected into a process or thread we control: the kernel gives the new task the saved id,
/// and ptrace (PTRACE_O_TRACEFORK/TRACECLONE) attaches it to us, stopped before it runs a single instruction.
/// </summary>
internal static class Clone3
{
    private const int ArgsSize = 11 * 8;

    /// <summary>
    /// Creates task <paramref name="tid"/> and returns it stopped; <paramref name="threadOf"/> is the process a new
    /// thread joins (its id as we see it). The tracee carries the id we see (ptrace's event message): in a PID
    /// namespace of the restore's own, <paramref name="tid"/> is the id inside, which the kernel gives too.
    /// </summary>
    public static Tracee Create(RemoteSyscaller caller, ScratchArea scratch, int tid, ulong flags, int exitSignal, int? threadOf = null) =>
        Create(caller, scratch, [tid], flags, exitSignal, threadOf);

    /// <summary>
    /// Creates a task with its ids at every PID namespace level (<see cref="PidLevels"/>: outermost first, the last
    /// the one it sees), from the forker's namespace inwards; with CLONE_NEWPID in <paramref name="flags"/> the last
    /// level is a new namespace, of which it is the init.
    /// </summary>
    public static Tracee Create(RemoteSyscaller caller, ScratchArea scratch, IReadOnlyList<int> levels, ulong flags, int exitSignal, int? threadOf = null)
    {
        scratch.Reset();
        // set_tid: the id in the task's own namespace first, then in each one up.
        var setTid = scratch.PutArray<int>(levels.Reverse().ToArray());
        var args = scratch.PutArray<ulong>(new ulong[]
        {
            flags,
            0, 0, 0,                 // pidfd, child_tid, parent_tid
            (ulong)exitSignal,
            0, 0, 0,                 // stack, stack_size, tls: the registers set at the end decide
            levels.Count == 0 ? 0 : setTid.Value, (ulong)levels.Count, // set_tid, set_tid_size
            0,                       // cgroup
        });
        long created = caller.Call(RemoteCall.Clone3(args, new ByteCount(ArgsSize)));
        int tid = levels.Count > 0 ? levels[^1] : 1;
        string what = levels.Count == 0 ? "the init of a new PID namespace" : levels.Count == 1 ? $"task {tid}" : $"task {tid} (ids {string.Join(", ", levels)} from the outermost namespace in)";
        if (created == -Errno.EEXIST)
        {
            throw new CheckpointException(CheckpointErrorKind.PidInUse, $"PID {string.Join(" or ", levels.Distinct())} of {what} is in use by another process (perhaps a zombie).", tid,
                $"Stop the process that holds PID {levels[0]}, or restore after it has exited.");
        }
        if (created == -Errno.EPERM)
        {
            // The capability counts in the user namespace that owns the PID namespace, and in the task that forks.
            throw levels.Count == 0 || (flags & (uint)LibC.CLONE_NEWPID) != 0 && !SessionPrivileges.Current().Has(Capability.SysAdmin)
                ? MissingPrivilege.For(Capability.SysAdmin, $"Creating {what} (clone3 with CLONE_NEWPID, in the task {caller.Thread.Tid})", caller.Thread.Tid,
                    new NativeException("clone3 with CLONE_NEWPID", Errno.EPERM))
                : MissingPrivilege.For(Capability.CheckpointRestore,
                    $"Giving {what} its saved id (clone3 with set_tid, in the task {caller.Thread.Tid} that forks it)", tid,
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

    /// <summary>Creates the init of a new PID namespace (<paramref name="flags"/> with CLONE_NEWPID), which is PID 1 there.</summary>
    public static Tracee CreateNamespaceInit(RemoteSyscaller caller, ScratchArea scratch, ulong flags, int exitSignal) =>
        Create(caller, scratch, [], flags, exitSignal, null);
}
