using CriuPS.Engine.Resources.Files;

namespace CriuPS.Engine.Tests.Files;

/// <summary>Telling which process (and thread) a path under /proc is about, as /proc/PID/fd links show them.</summary>
public sealed class ProcFileOfTreeTests
{
    [Theory]
    [InlineData("/proc/4242/stat", 4242)]
    [InlineData("/proc/4242", 4242)]
    [InlineData("/proc/4242/task/4250/status", 4242)]
    [InlineData("/proc/self/status", null)]
    [InlineData("/proc/stat", null)]
    [InlineData("/proc/12ab/stat", null)]
    [InlineData("/procs/12/stat", null)]
    [InlineData("/tmp/proc/12/stat", null)]
    public void FindsThePidAPathIsUnder(string path, int? pid) => Assert.Equal(pid, ProcFileOfTree.PidOf(path));

    [Theory]
    [InlineData("/proc/4242/task/4250/status", 4250)]
    [InlineData("/proc/4242/task/4250", 4250)]
    [InlineData("/proc/4250/stat", 4250)]
    [InlineData("/proc/4242/tasks", 4242)]
    [InlineData("/dev/null", null)]
    public void FindsTheTaskAPathIsAbout(string path, int? task) => Assert.Equal(task, ProcFileOfTree.ThreadOf(path));
}
