using CriuPS.Native.Interop;
using CriuPS.Native.Ptrace;

namespace CriuPS.Engine.Tests.Threads;

public class SyscallRestartTests
{
    private const ulong Rip = 0x401002;

    private static UserRegs Interrupted(int code, SyscallNumber call) =>
        new() { Rax = unchecked((ulong)-code), OrigRax = (ulong)call, Rip = Rip };

    [Theory]
    [InlineData(Errno.ERESTARTSYS)]
    [InlineData(Errno.ERESTARTNOINTR)]
    [InlineData(Errno.ERESTARTNOHAND)]
    public void RestartableCallsRunAgain(int code)
    {
        var regs = SyscallRestart.ForResume(Interrupted(code, SyscallNumber.Read), restartBlockKept: false);
        Assert.Equal((ulong)SyscallNumber.Read, regs.Rax);
        Assert.Equal(Rip - 2, regs.Rip);
        Assert.Equal(ulong.MaxValue, regs.OrigRax);
    }

    [Fact]
    public void ACallNeedingItsRestartBlockUsesRestartSyscallWhileTheBlockExists()
    {
        var regs = SyscallRestart.ForResume(Interrupted(Errno.ERESTART_RESTARTBLOCK, SyscallNumber.ClockNanosleep), restartBlockKept: true);
        Assert.Equal((ulong)SyscallNumber.RestartSyscall, regs.Rax);
        Assert.Equal(Rip - 2, regs.Rip);
    }

    [Fact]
    public void ACallNeedingItsRestartBlockFailsWithEintrInARestoredProcess()
    {
        var regs = SyscallRestart.ForResume(Interrupted(Errno.ERESTART_RESTARTBLOCK, SyscallNumber.ClockNanosleep), restartBlockKept: false);
        Assert.Equal(unchecked((ulong)-Errno.EINTR), regs.Rax);
        Assert.Equal(Rip, regs.Rip);
        Assert.Equal(ulong.MaxValue, regs.OrigRax);
    }

    [Theory]
    [InlineData(9 /* FUTEX_WAIT_BITSET */ | 128 /* FUTEX_PRIVATE_FLAG */)]
    [InlineData(9 | 256 /* FUTEX_CLOCK_REALTIME */)]
    public void AnAbsoluteFutexWaitRunsAgainWithItsOwnDeadlineInARestoredProcess(ulong operation)
    {
        var interrupted = Interrupted(Errno.ERESTART_RESTARTBLOCK, SyscallNumber.Futex);
        interrupted.Rsi = operation;
        var regs = SyscallRestart.ForResume(interrupted, restartBlockKept: false);
        Assert.Equal((ulong)SyscallNumber.Futex, regs.Rax);
        Assert.Equal(Rip - 2, regs.Rip);
        Assert.Equal(ulong.MaxValue, regs.OrigRax);
    }

    [Fact]
    public void ARelativeFutexWaitFailsWithEintrWhereItsTimeLeftIsUnknown()
    {
        var interrupted = Interrupted(Errno.ERESTART_RESTARTBLOCK, SyscallNumber.Futex);
        interrupted.Rsi = 0 /* FUTEX_WAIT */ | 128;
        var regs = SyscallRestart.ForResume(interrupted, restartBlockKept: false);
        Assert.Equal(unchecked((ulong)-Errno.EINTR), regs.Rax);
        Assert.Equal(Rip, regs.Rip);
    }

    [Fact]
    public void AThreadOutsideASystemCallKeepsItsRegisters()
    {
        var regs = new UserRegs { Rax = 42, OrigRax = ulong.MaxValue, Rip = Rip };
        Assert.False(SyscallRestart.IsInterrupted(regs));
        var resumed = SyscallRestart.ForResume(regs, restartBlockKept: true);
        Assert.Equal(42UL, resumed.Rax);
        Assert.Equal(Rip, resumed.Rip);
    }

    [Fact]
    public void TheImageKeepsTheCallNumberForTheRecord()
    {
        var saved = SyscallRestart.ForImage(Interrupted(Errno.ERESTARTSYS, SyscallNumber.Read));
        Assert.Equal((ulong)SyscallNumber.Read, saved.OrigRax);
        Assert.Equal((ulong)SyscallNumber.Read, saved.Rax);
        Assert.Equal(Rip - 2, saved.Rip);
        Assert.False(SyscallRestart.IsInterrupted(saved));
    }
}
