using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Dump;

/// <summary>One frozen process and the image entries its resource modules fill in.</summary>
internal sealed class DumpedProcess
{
    public DumpedProcess(FrozenProcess frozen, ProcessMemory memory, Injection injection, List<VmaInfo> vmas)
    {
        Frozen = frozen;
        Memory = memory;
        Injection = injection;
        Stat = ProcStat.Read(frozen.ProcessId);
        Status = ProcStatus.Read(frozen.ProcessId);
        Vmas = vmas;
        foreach (var thread in frozen.Threads)
        {
            Cores[thread.Tid] = new CoreEntry
            {
                Mtype = CoreEntry.Types.March.X8664,
                ThreadInfo = new ThreadInfoX86(),
                ThreadCore = new ThreadCoreEntry(),
            };
        }
        LeaderCore.Tc = new TaskCoreEntry();
    }

    public int Pid => Frozen.ProcessId;

    public FrozenProcess Frozen { get; }

    public IReadOnlyList<Tracee> Threads => Frozen.Threads;

    public ProcessMemory Memory { get; }

    /// <summary>The injection session in the leader; other threads get callers of their own from it.</summary>
    public Injection Injection { get; }

    public ProcStat Stat { get; }

    public ProcStatus Status { get; }

    /// <summary>The memory map, without our own injection area.</summary>
    public List<VmaInfo> Vmas { get; }

    public PstreeEntry Pstree { get; } = new();

    public TaskKobjIdsEntry Ids { get; } = new();

    /// <summary>core-TID.img of every thread.</summary>
    public Dictionary<int, CoreEntry> Cores { get; } = new();

    /// <summary>Every thread's NSpid (the engine's namespace first), from the status its state was read with.</summary>
    public Dictionary<int, int[]> NamespacePids { get; } = new();

    public CoreEntry LeaderCore => Cores[Pid];

    public MmEntry Mm { get; } = new();

    public FsEntry Fs { get; } = new();

    /// <summary>The process's descriptors (fdinfo-ID.img).</summary>
    public List<FdinfoEntry> FileDescriptors { get; } = new();

    public PagemapHead PagemapHead { get; } = new();

    private readonly Dictionary<int, RemoteSyscaller> callers = new();

    /// <summary>
    /// Runs system calls in a given thread (per-thread state such as the alternate signal stack can only be read
    /// from inside that thread). A thread other than the leader gets its registers back on release.
    /// </summary>
    public RemoteSyscaller CallerFor(Tracee thread)
    {
        if (thread.Tid == Pid)
        {
            return Injection.Caller;
        }
        if (!callers.TryGetValue(thread.Tid, out var caller))
        {
            if (Frozen.Parked.TryGetValue(thread.Tid, out var parked))
            {
                caller = Injection.CallerFor(parked, Frozen.StopSignal, Frozen.HeldWhileRunning);
            }
            else
            {
                caller = Injection.CallerFor(thread);
                Frozen.RegistersToRestore[thread.Tid] = caller.OriginalRegs;
            }
            callers[thread.Tid] = caller;
        }
        return caller;
    }

    public List<PagemapEntry> Pagemap { get; } = new();
}
