using CriuPS.Engine.Resources.Memory;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using Xunit;

namespace CriuPS.Engine.Tests.Memory;

/// <summary>
/// The pre-flight's areas: maps alone when no area's verdict can depend on its VmFlags, smaps as soon as one's can.
/// </summary>
public class PreflightAreasTests
{
    [Theory]
    [InlineData("", false)]
    [InlineData("[heap]", false)]
    [InlineData("[vvar]", false)]
    [InlineData("[anon:thread stack]", false)]
    [InlineData("/usr/lib/x86_64-linux-gnu/libc.so.6", false)]
    [InlineData("/tmp/data (deleted)", false)]
    [InlineData("/dev/shm/segment", false)]
    [InlineData("/memfd:cache (deleted)", false)]
    [InlineData("/dev/mem", true)]
    [InlineData("/dev/zero (deleted)", true)]
    [InlineData("/dev/hugepages/pool", true)]
    [InlineData("/sys/devices/pci0000:00/0000:00:02.0/resource0", true)]
    [InlineData("/proc/bus/pci/00/02.0", true)]
    [InlineData("/anon_hugepage (deleted)", true)]
    [InlineData("anon_inode:[io_uring]", true)]
    [InlineData("socket:[4242]", true)]
    [InlineData("/dmabuf:", true)]
    public void SendsToSmapsTheAreasWhoseVerdictMayDependOnTheirFlags(string path, bool mayMatter)
    {
        var header = $"7f1e2c000000-7f1e2c001000 rw-p 00000000 00:05 77 {path}".TrimEnd();
        Assert.Equal(mayMatter, PreflightAreas.FlagsMayMatter(SmapsParser.ParseHeader(header)));
    }

    [Fact]
    public void AProcessOfOrdinaryAreasIsReadFromMapsWithTheSameLayoutAsSmaps()
    {
        using var sleeper = TestProcess.StartSleeper();
        var smaps = SmapsParser.Read(sleeper.Pid);
        Assert.DoesNotContain(smaps, PreflightAreas.FlagsMayMatter);
        var areas = PreflightAreas.Read(sleeper.Pid);
        Assert.Equal(smaps.Count, areas.Count);
        Assert.All(areas.Zip(smaps), pair => Assert.True(pair.First.IsSameArea(pair.Second)));
        // Read from maps: no area carries flags (smaps gives every area some, "rd" at least for these).
        Assert.All(areas, a => Assert.Equal(string.Empty, a.VmFlags.ToString()));
    }

    [Fact]
    public void AMappedDeviceFileSendsTheWholeProcessToSmaps()
    {
        using var zero = FileDescriptor.Open("/dev/zero", O.RDWR | O.CLOEXEC);
        ulong area = Mmap.SharedFile(zero, 4096);
        try
        {
            var areas = PreflightAreas.Read(Environment.ProcessId);
            var mapped = Assert.Single(areas, a => a.Start.Value == area);
            Assert.True(PreflightAreas.FlagsMayMatter(mapped));
            Assert.True(mapped.HasFlag("sh"));
            Assert.All(areas, a => Assert.NotEqual(string.Empty, a.VmFlags.ToString()));
        }
        finally
        {
            Mmap.Munmap(area, 4096);
        }
    }
}
