using System.Text.RegularExpressions;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Tests.Privileges;

public class CapabilityTests
{
    [Fact]
    public void EveryCapabilityHasTheKernelsNumberAndName()
    {
        // The kernel's own list, from the headers gcc compiles the test targets with.
        var defined = Regex.Matches(File.ReadAllText("/usr/include/linux/capability.h"), @"^#define (CAP_[A-Z_]+)\s+(\d+)\s*$", RegexOptions.Multiline)
            .ToDictionary(m => m.Groups[1].Value, m => int.Parse(m.Groups[2].Value));
        Assert.Equal(defined.Count, Enum.GetValues<Capability>().Length);
        foreach (var capability in Enum.GetValues<Capability>())
        {
            Assert.True(defined.TryGetValue(capability.KernelName(), out int number), capability.KernelName());
            Assert.Equal(number, (int)capability);
        }
    }

    [Fact]
    public void SetsAreDescribedByName()
    {
        Assert.Equal("none", Capabilities.Describe(0));
        Assert.Equal("CAP_SYS_PTRACE, CAP_CHECKPOINT_RESTORE", Capabilities.Describe(Capability.SysPtrace.Bit() | Capability.CheckpointRestore.Bit()));
        Assert.Equal("CAP_CHOWN, capability 41", Capabilities.Describe(1UL | 1UL << 41));
        Assert.True(Capability.NetAdmin.In(0x1000));
        Assert.False(Capability.NetAdmin.In(0x0fff));
    }
}
