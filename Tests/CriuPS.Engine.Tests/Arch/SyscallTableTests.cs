namespace CriuPS.Engine.Tests.Arch;

public class SyscallTableTests
{
    private static readonly IArchitecture X86 = X86_64Architecture.Instance;

    [Fact]
    public void EveryCallHasTheX86NumberOfItsName()
    {
        foreach (var call in Enum.GetValues<SystemCall>())
        {
            Assert.Equal((long)Enum.Parse<SyscallNumber>(call.ToString()), X86.NumberOf(call));
        }
        Assert.Equal(Enum.GetValues<SystemCall>().Length, Enum.GetValues<SyscallNumber>().Length);
    }

    [Fact]
    public void TheNumberAStoppedThreadShowsIsDecodedToItsCall()
    {
        foreach (var call in Enum.GetValues<SystemCall>())
        {
            Assert.Equal(call, X86.SyscallOf(X86.EnteringSyscall(default, call)));
        }
        Assert.Null(X86.SyscallOf(X86.OutsideSyscall(default)));
        Assert.Null(X86.SyscallOf(new UserRegs { OrigRax = 600 })); // no call of x86-64 has that number (yet): none CriuPS names
    }

    [Fact]
    public void ACallIsMadeWithItsNumberAndArgumentsInTheirRegisters()
    {
        var regs = X86.WithCall(default, SystemCall.Mmap, 1, 2, 3, 4, 5, 6);
        Assert.Equal(9UL, regs.Rax);
        Assert.Equal([1UL, 2, 3, 4, 5, 6], Enumerable.Range(0, 6).Select(i => X86.ArgumentOf(regs, i)));
    }
}
