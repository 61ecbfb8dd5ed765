using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Restore;

/// <summary>A process being rebuilt: its images and the traced, still-stopped shell we turn into it.</summary>
internal sealed class RestoringProcess
{
    public RestoringProcess(ProcessImages images, Tracee leader, ProcessMemory memory, Injection injection)
    {
        Images = images;
        Leader = leader;
        Memory = memory;
        Injection = injection;
    }

    public ProcessImages Images { get; }

    public int Pid => Images.Pid;

    public Tracee Leader { get; }

    public ProcessMemory Memory { get; }

    public Injection Injection { get; }

    public RemoteSyscaller Caller => Injection.Caller;
}
