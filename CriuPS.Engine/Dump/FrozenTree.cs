using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Cgroups;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Resources.Process;
using CriuPS.Native.Arch;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Dump;

/// <summary>
/// Every process of the tree under the root, frozen: parents are frozen before their children, and the tree is
/// listed again until a pass finds nothing new, so a process forked while we freeze is caught too. Zombies cannot
/// be traced; they are recorded as they are. The one skeleton of dumps, pre-dumps and the background copy's arming:
/// <see cref="Freeze"/>, <see cref="Attach"/> (memory and an injection session in every process), then
/// <see cref="Release"/> (each process put back as it was) or <see cref="Kill"/>; disposing closes the memories.
/// </summary>
internal sealed class FrozenTree : IDisposable
{
    private static readonly ByteCount InjectionAreaSize = new(64 * 1024);

    private FrozenTree(List<ProcessTree.Member> members, Dictionary<int, FrozenProcess> frozen)
    {
        Members = members;
        this.frozen = frozen;
    }

    private readonly Dictionary<int, FrozenProcess> frozen;
    private readonly Dictionary<int, Injection> injections = new();
    private readonly List<ProcessMemory> memories = new();

    /// <summary>The tree, parents before children, the root first.</summary>
    public IReadOnlyList<ProcessTree.Member> Members { get; }

    /// <summary>The live processes, in tree order.</summary>
    public IEnumerable<FrozenProcess> Processes => Members.Where(m => !m.IsZombie).Select(m => frozen[m.Pid]);

    /// <summary>
    /// Freezes the tree of <paramref name="root"/>; with <paramref name="cgroup"/> (frozen, -FreezeCgroup), every task
    /// of it is seized while the cgroup holds it still, then the cgroup is thawed and the tasks stop one by one as below.
    /// </summary>
    /// <param name="layoutAhead">The areas of a process read ahead of the freeze, where they were (null otherwise).</param>
    public static FrozenTree Freeze(int root, TimeSpan timeout, EngineLog log, CgroupFreezer? cgroup = null, Func<int, IReadOnlyList<VmaInfo>?>? layoutAhead = null)
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
                        frozen[member.Pid] = FrozenProcess.Freeze(member.Pid, timeout, log, seized, layoutAhead?.Invoke(member.Pid));
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

    /// <summary>
    /// Takes over the frozen tree for a dump: checks the layout of what is frozen (processes forked while we froze
    /// were not checked before), and opens memory and an injection session in every live process.
    /// </summary>
    public void Attach(DumpSession session, BackgroundCopy? background = null, AreasReadAhead? areasAhead = null)
    {
        int root = session.Options.ProcessId;
        var layout = ProcessTree.LayoutProblems(Members, session.Options.ShellJob).ToList();
        if (layout.Count > 0)
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported, $"Process {root} cannot be checkpointed: {string.Join("; ", layout)}.", root);
        }
        foreach (var member in Members)
        {
            session.TreeOrder.Add(member.Pid);
            if (member.IsZombie)
            {
                session.Zombies.Add(new DumpedZombie(member));
                continue;
            }
            var process = frozen[member.Pid];
            var memory = OpenMemory(member.Pid);
            // Read once (megabytes for thousands of areas), before the injection area joins them; a final dump read
            // smaps ahead and reads only maps now (no walk over every page while frozen), unless the layout changed.
            var vmas = background?.AreasAtFreeze(member.Pid, session.Log) ?? areasAhead?.AtFreeze(member.Pid, session.Log) ?? SmapsParser.Read(member.Pid);
            var injection = BeginInjection(process, memory, vmas);
            foreach (var leftover in injection.RemoveLeftovers(vmas))
            {
                session.Log.Write($"process {member.Pid}: removed the injection area {leftover.Range} that a checkpoint which died left behind");
                vmas.Remove(leftover);
            }
            session.Processes.Add(new DumpedProcess(process, memory, injection, vmas));
        }
        areasAhead?.StartConfirming(session.Processes.Select(p => (p.Pid, p.Vmas)), session.Log);
    }

    /// <summary>Opens the memory of a process of the tree, closed when the tree is disposed.</summary>
    public ProcessMemory OpenMemory(int pid)
    {
        var memory = ProcessMemory.Open(pid);
        memories.Add(memory);
        return memory;
    }

    /// <summary>
    /// Maps the injection area in a frozen process (through its parked leader where it has one); <see cref="Release"/>
    /// removes it.
    /// </summary>
    public Injection BeginInjection(FrozenProcess process, ProcessMemory memory, IReadOnlyList<VmaInfo> vmas)
    {
        var injection = process.Parked.TryGetValue(process.ProcessId, out var leader)
            ? Injection.BeginParked(leader, memory, InjectionAreaSize, process.StopSignal, process.HeldWhileRunning)
            : Injection.Begin(process.Leader, memory, vmas, InjectionAreaSize);
        injections[process.ProcessId] = injection;
        return injection;
    }

    /// <summary>The system calls injected into the tree's processes so far.</summary>
    public int InjectedCalls => injections.Values.Sum(i => i.Caller.CallCount);

    /// <summary>Lets every process go, as it was (or stopped by <paramref name="stopSignal"/>).</summary>
    public void Release(EngineLog log, int stopSignal = 0)
    {
        foreach (var process in Processes)
        {
            try
            {
                Release(process, injections.GetValueOrDefault(process.ProcessId), log, stopSignal);
            }
            catch (TraceeGoneException e)
            {
                log.Error($"releasing {process.ProcessId}: {e.Message}");
            }
        }
    }

    /// <summary>Puts the process back as it was: our injection area gone, registers and signal masks restored, detached.</summary>
    private static void Release(FrozenProcess frozen, Injection? injection, EngineLog log, int stopSignal)
    {
        if (injection is not null && frozen.Leader.IsAttached)
        {
            var resume = IArchitecture.Current.ForResume(injection.Caller.OriginalRegs, restartBlockKept: true);
            try
            {
                injection.End(resume);
            }
            catch (Exception e) when (e is not TraceeGoneException)
            {
                log.Error($"removing the injection area: {e.Message}");
                frozen.Leader.SetRegs(resume);
            }
        }
        frozen.Release(stopSignal);
    }

    public void Dispose()
    {
        foreach (var memory in memories)
        {
            memory.Dispose();
        }
        memories.Clear();
    }

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
