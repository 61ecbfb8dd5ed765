using System.Diagnostics;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Tests.Processes;

/// <summary>Waiting in the kernel for a process to be reaped: a zombie keeps the wait going, its reaping ends it.</summary>
public class PidfdWaitTests
{
    [Fact]
    public void AZombieIsWaitedForUntilItsParentReapsIt()
    {
        using var child = TestProcess.StartSleeper();
        using var pidfd = Pidfd.Open(child.Pid);
        Tmds.Linux.LibC.kill(child.Pid, Signals.SIGKILL);
        child.WaitForState('Z');

        Assert.False(Pidfd.WaitReaped(pidfd, TimeSpan.FromMilliseconds(200)), "a zombie is not gone");

        var reaper = new Thread(() =>
        {
            Thread.Sleep(300);
            Wait4.Wait(child.Pid, Wait4.WALL);
        });
        var clock = Stopwatch.StartNew();
        reaper.Start();
        Assert.True(Pidfd.WaitReaped(pidfd, TimeSpan.FromSeconds(20)), "the wait ends when the zombie is reaped");
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.25, 15);
        reaper.Join();
    }
}
