using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Restore;

/// <summary>One thread being rebuilt: the traced thread, its saved core, and a caller that runs system calls in it.</summary>
internal sealed record RestoringThread(Tracee Tracee, CoreEntry Core, RemoteSyscaller Caller)
{
    public int Tid => Tracee.Tid;
}

/// <summary>A process being rebuilt: its images and the traced, still-stopped shell we turn into it.</summary>
internal sealed class RestoringProcess
{
    public RestoringProcess(ProcessImages images, Tracee leader, ProcessMemory memory, Injection injection)
    {
        Images = images;
        Leader = leader;
        Memory = memory;
        Injection = injection;
        Threads.Add(new RestoringThread(leader, images.LeaderCore, injection.Caller));
    }

    public ProcessImages Images { get; }

    /// <summary>The saved PID, which the process has (in its PID namespace).</summary>
    public int Pid => Images.Pid;

    /// <summary>The PID we see it with (for /proc, ptrace, kill): the saved one, but in a PID namespace of the restore's own.</summary>
    public int HostPid => Leader.Tid;

    public Tracee Leader { get; }

    public ProcessMemory Memory { get; }

    public Injection Injection { get; }

    public RemoteSyscaller Caller => Injection.Caller;

    /// <summary>Every thread created so far, the leader first.</summary>
    public List<RestoringThread> Threads { get; } = new();
}
