using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Process;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Dump;

/// <summary>
/// A zombie of the tree: a process that has exited and waits for its parent to collect its status. It has no
/// memory or files left; the image keeps its place in the tree and its exit status (task state "dead", as CRIU
/// writes it), so that the parent's wait still finds it after the restore.
/// </summary>
internal sealed class DumpedZombie
{
    public const uint TaskDead = 2;

    public DumpedZombie(ProcessTree.Member member)
    {
        var stat = ProcStat.Read(member.Pid);
        Pid = member.Pid;
        Pstree = new PstreeEntry { Pid = (uint)member.Pid, Ppid = (uint)member.ParentPid, Pgid = (uint)stat.ProcessGroup, Sid = (uint)stat.Session };
        Pstree.Threads.Add((uint)member.Pid);
        Core = new CoreEntry
        {
            Mtype = CoreEntry.Types.March.X8664,
            Tc = new TaskCoreEntry
            {
                TaskState = TaskDead,
                ExitCode = (uint)stat.ExitCode,
                Personality = 0,
                Flags = stat.Flags,
                BlkSigset = 0,
                Comm = stat.Comm,
            },
        };
    }

    public int Pid { get; }

    public PstreeEntry Pstree { get; }

    public CoreEntry Core { get; }
}
