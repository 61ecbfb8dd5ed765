using CriuPS.Engine.Errors;
using CriuPS.Engine.Logging;
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

    public static FrozenTree Freeze(int root, TimeSpan timeout, EngineLog log)
    {
        var frozen = new Dictionary<int, FrozenProcess>();
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
                        frozen[member.Pid] = FrozenProcess.Freeze(member.Pid, timeout, log);
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
            throw;
        }
    }

    public FrozenProcess this[int pid] => frozen[pid];

    /// <summary>Kills every process and collects what the kernel reports of their ends.</summary>
    public void Kill()
    {
        foreach (var process in Processes)
        {
            Tmds.Linux.LibC.kill(process.ProcessId, Signals.SIGKILL);
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
