using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Cgroups;
using CriuPS.Engine.Resources.Process;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;

namespace CriuPS.Engine.Dump;

/// <summary>
/// Every process of the tree under the root, frozen: parents are frozen before their children, and the tree is
/// listed again until a pass finds nothing new, so a process forked while we freeze is caught too. Zombies cannot
/// be traced; they are recorded as they are.
/// </summary>
internal sealed class FrozenTree
{
    private FrozenTree(List<ProcessTree.Member> members, Dictionary<int, FrozenProcess> frozen)
    {
        Members = members;
        this.frozen = frozen;
    }

    private readonly Dictionary<int, FrozenProcess> frozen;

    /// <summary>The tree, parents before children, the root first.</summary>
    public IReadOnlyList<ProcessTree.Member> Members { get; }

    /// <summary>The live processes, in tree order.</summary>
    public IEnumerable<FrozenProcess> Processes => Members.Where(m => !m.IsZombie).Select(m => frozen[m.Pid]);

    /// <summary>
    /// Freezes the tree of <paramref name="root"/>; with <paramref name="cgroup"/> (frozen, -FreezeCgroup), every task
    /// of it is seized while the cgroup holds it still, then the cgroup is thawed and the tasks stop one by one as below.
    /// </summary>
    public static FrozenTree Freeze(int root, TimeSpan timeout, EngineLog log, CgroupFreezer? cgroup = null)
    {
        var frozen = new Dictionary<int, FrozenProcess>();
        var seized = cgroup is null ? null : SeizeFrozenCgroup(root, cgroup, log);
        try
        {
            while (true)
            {
                var members = ProcessTree.Discover(root);
                bool changed = false;
                foreach (var member in members.Where(m => !m.IsZombie && !frozen.ContainsKey(m.Pid)))
                {
                    changed = true;
                    try
                    {
                        frozen[member.Pid] = FrozenProcess.Freeze(member.Pid, timeout, log, seized);
                    }
                    catch (Exception e) when (e is CheckpointException or IOException or NativeException or TraceeGoneException && member.Pid != root && !ProcessTree.IsAlive(member.Pid))
                    {
                        // It exited (or became a zombie) meanwhile: the next listing says which.
                    }
                }
                if (!changed)
                {
                    RefuseVforkInProgress(members);
                    return new FrozenTree(members, frozen);
                }
            }
        }
        catch
        {
            foreach (var process in frozen.Values)
            {
                process.Release();
            }
            ReleaseSeized(seized);
            throw;
        }
    }

    // In the frozen cgroup nothing forks or ends: its members are checked against the tree, each task is seized with
    // an interrupt pending (a frozen task cannot stop before it is thawed), and the cgroup is thawed: every task then
    // stops before it runs an instruction of its own.
    private static Dictionary<int, Tracee> SeizeFrozenCgroup(int root, CgroupFreezer cgroup, EngineLog log)
    {
        var seized = new Dictionary<int, Tracee>();
        try
        {
            var members = ProcessTree.Discover(root).Where(m => !m.IsZombie).Select(m => m.Pid).ToList();
            cgroup.CheckMembers(root, members);
            var options = FrozenProcess.SeizeOptions(SessionPrivileges.Current());
            foreach (int pid in members)
            {
                foreach (int tid in ProcFiles.ThreadIds(pid))
                {
                    try
                    {
                        seized[tid] = Tracee.Seize(tid, pid, options);
                    }
                    catch (NativeException e) when (e.Errno is Errno.EPERM or Errno.ESRCH)
                    {
                        throw TraceAccess.SeizeRefused(pid, tid, e);
                    }
                    Native.Interop.Ptrace.Interrupt(tid);
                }
            }
            cgroup.Thaw();
            log.Detail($"seized {seized.Count} task(s) of {members.Count} process(es) in the frozen cgroup {cgroup.Directory}");
            return seized;
        }
        catch
        {
            cgroup.Dispose();
            ReleaseSeized(seized);
            throw;
        }
    }

    // Tasks seized in a frozen cgroup that no FrozenProcess took over: once thawed, each stops, and is let go.
    private static void ReleaseSeized(Dictionary<int, Tracee>? seized)
    {
        if (seized is null)
        {
            return;
        }
        foreach (var task in seized.Values)
        {
            try
            {
                if (task.TryInterruptAndWait(TimeSpan.FromSeconds(1)))
                {
                    task.Detach();
                }
            }
            catch (Exception e) when (e is NativeException or TraceeGoneException)
            {
                // it ended; or it never stops, and the kernel detaches it when this thread ends
            }
        }
        seized.Clear();
    }

    public FrozenProcess this[int pid] => frozen[pid];

    /// <summary>Kills every process and collects what the kernel reports of their ends.</summary>
    public void Kill()
    {
        foreach (var process in Processes)
        {
            Native.Interop.Kill.Send(process.ProcessId, Signals.SIGKILL);
        }
        foreach (var process in Processes.Reverse())
        {
            process.Kill();
        }
    }

    // A parent in vfork cannot stop before its child execs or exits, so once the tree is frozen a child that still
    // shares its parent's memory was cloned with CLONE_VM: refuse rather than save one address space as two.
    private static void RefuseVforkInProgress(List<ProcessTree.Member> members)
    {
        foreach (var member in members.Skip(1).Where(m => !m.IsZombie && ProcessTree.InVfork(m)))
        {
            throw new CheckpointException(
                CheckpointErrorKind.Unsupported,
                $"Process {member.Pid} shares its memory with its parent {member.ParentPid} (cloned with CLONE_VM but not as a thread); only threads may share memory.",
                member.Pid);
        }
    }
}
