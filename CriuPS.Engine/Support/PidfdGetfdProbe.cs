using CriuPS.Native.Interop;

namespace CriuPS.Engine.Support;

/// <summary>Takes a copy of one of our own descriptors through a pidfd of our own process.</summary>
internal sealed class PidfdGetfdProbe : FeatureProbe
{
    public override string Name => "PidfdGetfd";

    public override bool Essential => true;

    public override string Requirement => "pidfd_open (Linux 5.3+) and pidfd_getfd (Linux 5.6+), with ptrace access to the process";

    public override string Impact => "Restore-Process cannot hand the files it opens over to the restored process.";

    public override (bool, string) Check()
    {
        try
        {
            using var pidfd = Pidfd.Open(Environment.ProcessId);
            using var copy = Pidfd.GetFd(pidfd, pidfd.Value);
            return (true, $"copied descriptor {pidfd.Value} of this process as {copy.Value}");
        }
        catch (NativeException e)
        {
            return (false, $"{e.Message} (kernel {KernelFacts.Release})");
        }
    }
}
