using CriuPS.Native.Interop;
using CriuPS.Native.Ptrace;

namespace CriuPS.Engine.Support;

/// <summary>Asks for the rseq registration of a throwaway process's thread, as dumps do for every thread.</summary>
internal sealed class RseqConfigurationProbe : FeatureProbe
{
    public override string Name => "RseqConfiguration";

    public override bool Essential => true;

    public override string Requirement => "PTRACE_GET_RSEQ_CONFIGURATION (Linux 5.13+)";

    public override string Impact => "Threads registered for restartable sequences (every thread of programs built with glibc 2.35 or later) cannot be checkpointed.";

    public override (bool, string) Check()
    {
        using var child = ProbeChild.Start();
        RseqConfiguration? config;
        try
        {
            var tracee = Tracee.Seize(child.Pid, child.Pid, PtraceOptions.ExitKill);
            tracee.InterruptAndWait();
            config = Native.Interop.Ptrace.GetRseqConfiguration(child.Pid);
        }
        catch (NativeException e)
        {
            return (false, $"{e.Message} (kernel {KernelFacts.Release})");
        }
        return (true, config is { } c
            ? $"the test process's thread has rseq at 0x{c.RseqAbiPointer:x} ({c.RseqAbiSize} bytes, signature 0x{c.Signature:x8})"
            : "the request works; the test process's thread has no rseq registration (its C library registers none)");
    }
}
