using System.Diagnostics;
using System.Text;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.Ptrace;
using CriuPS.Native.RemoteSyscall;
using Xunit.Abstractions;

namespace CriuPS.Engine.Tests.RemoteSyscall;

public class RemoteSyscallerTests
{
    private readonly ITestOutputHelper output;

    public RemoteSyscallerTests(ITestOutputHelper output) => this.output = output;

    [Fact]
    public void InjectedCallsRunInTheTargetAndLeaveItAsItWas()
    {
        using var target = TestProcess.StartSleeper();
        var thread = Tracee.Seize(target.Pid, target.Pid, PtraceOptions.TraceSysGood | PtraceOptions.ExitKill);
        thread.InterruptAndWait();
        var before = thread.GetRegs();
        var mapsBefore = File.ReadAllText($"/proc/{target.Pid}/maps");
        using var memory = ProcessMemory.Open(target.Pid);

        var injection = Injection.Begin(thread, memory, SmapsParser.Read(target.Pid), new ByteCount(64 * 1024));
        Assert.Contains(injection.Scratch.Range.Start.Value.ToString("x"), File.ReadAllText($"/proc/{target.Pid}/maps"));

        Assert.Equal(target.Pid, injection.Caller.Call(SystemCall.Getpid));

        // A call with arguments in the scratch area: read the target's own comm.
        var path = injection.Scratch.PutString("/proc/self/comm");
        long fd = injection.Caller.Checked("openat", SystemCall.Openat, unchecked((ulong)-100), path.Value, (ulong)O.RDONLY);
        var buffer = injection.Scratch.Reserve(64);
        long n = injection.Caller.Checked("read", SystemCall.Read, (ulong)fd, buffer.Value, 64);
        injection.Caller.Checked("close", SystemCall.Close, (ulong)fd);
        Assert.Equal("sleep\n", Encoding.ASCII.GetString(memory.Read(buffer, (int)n)));

        // A failing call reports -errno.
        Assert.Equal(-Errno.EBADF, injection.Caller.Call(SystemCall.Close, 12345));

        var stopwatch = Stopwatch.StartNew();
        for (int i = 0; i < 200; i++)
        {
            injection.Caller.Call(SystemCall.Getpid);
        }
        output.WriteLine($"one injected call: {stopwatch.Elapsed.TotalMicroseconds / 200:F1} µs");

        // sleep was inside clock_nanosleep: it must resume through restart_syscall, not see -ERESTART_RESTARTBLOCK.
        Assert.True(SyscallRestart.IsInterrupted(before));
        var resume = SyscallRestart.ForResume(before, restartBlockKept: true);
        Assert.Equal((ulong)SyscallNumber.RestartSyscall, resume.Rax);
        injection.End(resume);
        var after = thread.GetRegs();
        Assert.Equal(before.Rip - 2, after.Rip);
        Assert.Equal(before.Rsp, after.Rsp);
        Assert.Equal(mapsBefore, File.ReadAllText($"/proc/{target.Pid}/maps"));
        thread.Detach();

        // The sleep carries on (its interrupted nanosleep is restarted by the kernel).
        Thread.Sleep(50);
        Assert.Equal('S', target.State);
    }
}
