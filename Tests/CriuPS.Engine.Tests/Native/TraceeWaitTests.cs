using System.Diagnostics;
using CriuPS.Native.Interop;
using CriuPS.Native.Ptrace;
using Xunit.Abstractions;

namespace CriuPS.Engine.Tests.Native;

/// <summary>
/// A tracee's stop is waited on the kernel (a waiter thread blocked in waitid, see StopDoorbell), also when the wait
/// has a deadline: the wait gives up in time, leaves exactly one waiter, catches the stop that comes later, and no
/// waiter outlives its tracee. The tracee is the parent of vforkstop, which cannot stop while its vfork child is
/// stopped (state D); both a child of ours (whose statuses the runtime may collect) and a stranger are tried.
/// </summary>
public class TraceeWaitTests
{
    private const int WaitidNumber = 247;
    private readonly ITestOutputHelper output;

    public TraceeWaitTests(ITestOutputHelper output) => this.output = output;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ATimedWaitGivesUpInTimeAndStillCatchesTheLaterStop(bool ourChild)
    {
        using var target = VforkStop.Start(ourChild);
        var tracee = Tracee.Seize(target.Parent, target.Parent, PtraceOptions.ExitKill);

        var clock = Stopwatch.StartNew();
        Assert.False(tracee.TryInterruptAndWait(TimeSpan.FromMilliseconds(300)));
        Assert.InRange(clock.ElapsedMilliseconds, 290, 5000);
        Assert.Equal(1, WaitersOn(target.Parent));

        // Waiting again reuses the waiter: a second one would block beside the first.
        Assert.False(tracee.TryInterruptAndWait(TimeSpan.FromMilliseconds(100)));
        Assert.Equal(1, WaitersOn(target.Parent));

        clock.Restart();
        target.LetTheParentGo();
        Assert.True(tracee.TryInterruptAndWait(TimeSpan.FromSeconds(20)));
        output.WriteLine($"stopped {clock.Elapsed.TotalMilliseconds:F2} ms after its vfork child was continued");
        Assert.Equal(PtraceEvent.Stop, tracee.LastStop.Event);
        Assert.Equal(0, WaitersOn(target.Parent));
        tracee.Detach();
    }

    // The kernel detaches the tracees of a thread that ends. A stranger's waiter then has nothing left to wait for
    // (waitid fails with ECHILD); a child's waits on as its parent's would, until the child stops or ends.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AWaiterLeftBehindEndsWithTheTracingThreadOrWithTheChild(bool ourChild)
    {
        using var target = VforkStop.Start(ourChild);
        bool gaveUp = true;
        var tracer = new Thread(() =>
        {
            var tracee = Tracee.Seize(target.Parent, target.Parent, PtraceOptions.None);
            gaveUp = !tracee.TryInterruptAndWait(TimeSpan.FromMilliseconds(200));
        });
        tracer.Start();
        tracer.Join();
        Assert.True(gaveUp);
        if (ourChild)
        {
            Thread.Sleep(200);
            Assert.Equal(1, WaitersOn(target.Parent));
            Kill.Send(target.Parent, Signals.SIGKILL);
        }
        Assert.Equal(0, WaitUntilNoWaiterOn(target.Parent, TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public void AStopIsReportedAsSoonAsItHappens()
    {
        using var target = TestProcess.StartSleeper();
        var tracee = Tracee.Seize(target.Pid, target.Pid, PtraceOptions.ExitKill);
        var clock = Stopwatch.StartNew();
        const int Rounds = 50;
        for (int i = 0; i < Rounds; i++)
        {
            Assert.True(tracee.TryInterruptAndWait(TimeSpan.FromSeconds(20)));
            Assert.Equal(PtraceEvent.Stop, tracee.LastStop.Event);
            tracee.Continue();
        }
        output.WriteLine($"interrupt to reported stop: {clock.Elapsed.TotalMicroseconds / Rounds:F0} µs on average");
        Assert.True(tracee.TryInterruptAndWait(TimeSpan.FromSeconds(20)));
        tracee.Detach();
    }

    // Threads of this process blocked in waitid(P_PID, pid, ...): the stop waiters watching pid.
    private static int WaitersOn(int pid) =>
        Directory.GetDirectories("/proc/self/task").Count(task =>
        {
            try
            {
                var call = File.ReadAllText(Path.Combine(task, "syscall")).Split(' ');
                return call.Length > 2 && call[0] == WaitidNumber.ToString() && call[1] == "0x1" && Convert.ToInt32(call[2], 16) == pid;
            }
            catch (IOException)
            {
                return false; // the thread ended
            }
        });

    private static int WaitUntilNoWaiterOn(int pid, TimeSpan longest)
    {
        var clock = Stopwatch.StartNew();
        int waiters;
        while ((waiters = WaitersOn(pid)) != 0 && clock.Elapsed < longest)
        {
            Thread.Sleep(10);
        }
        return waiters;
    }

    /// <summary>vforkstop, built from Tests/Targets: a parent in state D until its stopped vfork child goes on.</summary>
    private sealed class VforkStop : IDisposable
    {
        private readonly string directory;
        private readonly TestProcess starter;

        private VforkStop(string directory, TestProcess starter, int parent)
        {
            this.directory = directory;
            this.starter = starter;
            Parent = parent;
        }

        public int Parent { get; }

        // Read once the parent waits for it: a test may kill the parent, which leaves the child stopped, under init.
        private int Child { get; set; }

        /// <summary>Starts it as a child of ours, or (through a shell that leaves it) as a stranger's.</summary>
        public static VforkStop Start(bool ourChild)
        {
            string directory = Directory.CreateTempSubdirectory("criups-waits-").FullName;
            string source = Path.Combine(RepositoryRoot(), "Tests", "Targets", "vforkstop.c");
            var built = TestProcess.Run("/usr/bin/gcc", "-O2", "-o", Path.Combine(directory, "vforkstop"), source);
            Assert.True(built.Exited && built.ExitCode == 0, $"gcc: {built}");
            string run = ourChild ? "exec ./vforkstop" : "./vforkstop </dev/null >/dev/null 2>&1 &";
            var starter = TestProcess.Start("/bin/sh", "-c", $"cd '{directory}' && {run}");
            string ready = Path.Combine(directory, "ready");
            var clock = Stopwatch.StartNew();
            while (!File.Exists(ready) || !File.ReadAllText(ready).EndsWith('\n'))
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), "vforkstop did not start");
                Thread.Sleep(5);
            }
            var target = new VforkStop(directory, starter, int.Parse(File.ReadAllText(ready)));
            while (ProcessState(target.Parent) != 'D')
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), "vforkstop's parent did not wait for its child");
                Thread.Sleep(5);
            }
            target.Child = int.Parse(File.ReadAllText($"/proc/{target.Parent}/task/{target.Parent}/children").Trim());
            return target;
        }

        public void LetTheParentGo() => Kill.Send(Child, Signals.SIGCONT);

        public void Dispose()
        {
            // The child ends once continued (its parent reaps it); still there, it is stopped, whoever its parent.
            if (ProcessName(Child) == "vforkstop")
            {
                Kill.Send(Child, Signals.SIGKILL);
            }
            Kill.Send(Parent, Signals.SIGKILL);
            starter.Dispose();
            Directory.Delete(directory, recursive: true);
        }

        private static char ProcessState(int pid) => File.ReadAllText($"/proc/{pid}/stat").Split(") ")[1][0];

        private static string? ProcessName(int pid)
        {
            try
            {
                return File.ReadAllText($"/proc/{pid}/comm").Trim();
            }
            catch (IOException)
            {
                return null; // ended
            }
        }

        private static string RepositoryRoot()
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (!File.Exists(Path.Combine(directory.FullName, "Tests", "Targets", "vforkstop.c")))
            {
                directory = directory.Parent ?? throw new DirectoryNotFoundException("the repository above " + AppContext.BaseDirectory);
            }
            return directory.FullName;
        }
    }
}
