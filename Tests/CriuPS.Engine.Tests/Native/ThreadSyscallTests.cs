using CriuPS.Native.Proc;

namespace CriuPS.Engine.Tests.Native;

/// <summary>
/// ThreadSyscall and ProcFiles.RunTime, which the restore reads to know that a thread it let go is past the system
/// call instruction it resumes at.
/// </summary>
public class ThreadSyscallTests
{
    [Fact]
    public void ParsesEachFormOfTheFile()
    {
        Assert.Equal(new ThreadSyscall(true, -1, 0), ThreadSyscall.Parse("running"));
        Assert.Equal(new ThreadSyscall(false, -1, 0x401000), ThreadSyscall.Parse("-1 0x7ffe6c0bc808 0x401000"));
        Assert.Equal(new ThreadSyscall(false, 230, 0x7f4cdb3f7503),
            ThreadSyscall.Parse("230 0x0 0x0 0x7ffdf751a500 0x7ffdf751a540 0x0 0x0 0x7ffdf751a4e8 0x7f4cdb3f7503"));
        Assert.Null(ThreadSyscall.Parse("230"));
        Assert.Null(ThreadSyscall.Parse("x 0x1 0x2"));
    }

    [Fact]
    public void ShowsASleeperInsideItsCallAndNothingOfAThreadThatIsGone()
    {
        int pid;
        using (var sleeper = TestProcess.StartSleeper())
        {
            pid = sleeper.Pid;
            var now = ThreadSyscall.Read(pid, pid);
            Assert.NotNull(now);
            Assert.False(now.Value.Running);
            Assert.True(now.Value.Number >= 0, $"sleep is in system call {now.Value.Number}");
            Assert.NotEqual(0UL, now.Value.InstructionPointer);
            Assert.NotNull(ProcFiles.RunTime(pid, pid));
        }
        Assert.Null(ThreadSyscall.Read(pid, pid));
        Assert.Null(ProcFiles.RunTime(pid, pid));
    }

    [Fact]
    public void CountsTheCpuTimeOfABusyThread()
    {
        using var busy = TestProcess.Start("/bin/sh", "-c", "while :; do :; done");
        var first = ProcFiles.RunTime(busy.Pid, busy.Pid) ?? throw new InvalidOperationException("no schedstat");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (ProcFiles.RunTime(busy.Pid, busy.Pid) - first < TimeSpan.FromMilliseconds(20))
        {
            Assert.True(DateTime.UtcNow < deadline, "the busy loop got no CPU time in 10 s");
            Thread.Sleep(5);
        }
    }
}
