using CriuPS.Native.Proc;

namespace CriuPS.Engine.Tests.Native;

/// <summary>
/// /proc's stat and status are cut into fields as they are asked for: what is asked gives the field the kernel wrote,
/// whatever the name of the task, and a field the kernel does not write is an error, not a neighbour's value.
/// </summary>
public class ProcParsingTests
{
    [Fact]
    public void StatFieldsAreFoundAfterACommWithSpacesAndParentheses()
    {
        var fields = Enumerable.Range(3, 50).Select(n => n.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        fields[0] = "S";
        var stat = ProcStat.Parse($"4242 (a) b) (c ) {string.Join(' ', fields)}\n");

        Assert.Equal("a) b) (c ", stat.Comm);
        Assert.Equal('S', stat.State);
        Assert.Equal(4, stat.PPid);
        Assert.Equal(22UL, stat.StartTime);
        Assert.Equal(39, stat.Processor);
        Assert.Equal(52, stat.ExitCode);
    }

    [Fact]
    public void StatOfAnOlderKernelLacksItsLastFields()
    {
        var stat = ProcStat.Parse("7 (old) R 1 7 7 0 -1 4194560");

        Assert.Equal(1, stat.PPid);
        Assert.Equal(4194560U, stat.Flags);
        Assert.Throws<InvalidDataException>(() => stat.Priority);
    }

    [Fact]
    public void TheRealStatAndStatusOfThisProcessAgree()
    {
        var stat = ProcStat.Read(Environment.ProcessId);
        var status = ProcStatus.Read(Environment.ProcessId);

        Assert.Equal(status.PPid, stat.PPid);
        Assert.Equal(status.Name, stat.Comm);
        Assert.InRange(stat.Processor, 0, Environment.ProcessorCount - 1);
        Assert.Equal(Environment.ProcessId, status.Tgid);
    }

    [Fact]
    public void StatusFieldsAreFoundByTheirWholeName()
    {
        var status = ProcStatus.Parse("Name:\tSigPnd: x\nUmask:\t0022\nState:\tS (sleeping)\nShdPnd:\t0000000000000100\nSigPnd:\t0000000000000002\nNSpid:\t31\t1\n");

        Assert.Equal("SigPnd: x", status.Name);
        Assert.Equal('S', status.State);
        Assert.Equal(0x2UL, status.SigPending);
        Assert.Equal(0x100UL, status.SharedPending);
        Assert.Equal([31, 1], status.NamespacePids);
        Assert.Equal(0x12U, status.Umask);
        Assert.False(status.Has("Pnd"));
        Assert.False(status.Has("CapAmb"));
        Assert.Equal(0UL, status.CapAmbient);
        Assert.Throws<InvalidDataException>(() => status.PPid);
    }
}
