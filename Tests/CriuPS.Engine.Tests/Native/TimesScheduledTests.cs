using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Tests.Native;

/// <summary>ProcFiles.TimesScheduled, which the restore watches to know that a thread it let go has run.</summary>
public class TimesScheduledTests
{
    [Fact]
    public void CountsTheTimesAThreadIsPutOnACpuAndNoneWhileItIsStopped()
    {
        using var sleeper = TestProcess.StartSleeper();
        Kill.Send(sleeper.Pid, Signals.SIGSTOP);
        sleeper.WaitForState('T');
        long stopped = ProcFiles.TimesScheduled(sleeper.Pid, sleeper.Pid) ?? throw new InvalidOperationException("no schedstat");
        Thread.Sleep(50);
        Assert.Equal(stopped, ProcFiles.TimesScheduled(sleeper.Pid, sleeper.Pid));

        // Continued, sleep runs to go back to its nanosleep.
        Kill.Send(sleeper.Pid, Signals.SIGCONT);
        sleeper.WaitForState('S');
        Assert.True(ProcFiles.TimesScheduled(sleeper.Pid, sleeper.Pid) > stopped);
    }

    [Fact]
    public void SaysNothingOfAThreadThatIsGone()
    {
        int pid;
        using (var sleeper = TestProcess.StartSleeper())
        {
            pid = sleeper.Pid;
        }
        Assert.Null(ProcFiles.TimesScheduled(pid, pid));
    }
}
