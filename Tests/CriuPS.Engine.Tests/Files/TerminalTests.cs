using System.Text;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Files;
using CriuPS.Native.Interop;
using Tmds.Linux;
using Xunit;

namespace CriuPS.Engine.Tests.Files;

/// <summary>Terminal devices told by their numbers, and the tty_info ids CRIU gives them.</summary>
public sealed class TerminalDeviceTests
{
    // glibc's makedev, as st_rdev holds it.
    private static FileStatus CharDevice(uint major, uint minor) =>
        new(FileStatus.CharDevice | 0x1b0, 6, 1, 0, ((ulong)(major & 0xfff) << 8) | ((ulong)(major & ~0xfffu) << 32) | (minor & 0xff) | ((ulong)(minor & ~0xffu) << 12));

    [Fact]
    public void APtySlaveIsIndexedByItsNumbersAndTakesTheEvenId()
    {
        var slave = TerminalDevice.Of(CharDevice(136, 3), () => throw new InvalidOperationException("a slave is no master"));
        Assert.Equal(new TerminalDevice(TerminalRole.PtySlave, 3), slave);
        Assert.Equal(6u, slave.InfoId);
        Assert.Equal(TtyType.Pty, slave.Type);
        Assert.Equal(261, TerminalDevice.Of(CharDevice(137, 5), () => -1).Index);
    }

    [Fact]
    public void AMasterAsksItsIndexAndTakesTheOddId()
    {
        var master = TerminalDevice.Of(CharDevice(5, 2), () => 7);
        Assert.Equal(new TerminalDevice(TerminalRole.PtyMaster, 7), master);
        Assert.Equal(15u, master.InfoId);
        Assert.Equal(TerminalDevice.MasterInfoId(7), master.InfoId);
        Assert.Equal(TerminalDevice.SlaveInfoId(7) + 1, master.InfoId);
    }

    [Fact]
    public void TheOtherTerminalsHaveCriusFixedIndexes()
    {
        Assert.Equal((TerminalRole.ControllingTerminal, 2012u), Describe(5, 0));
        Assert.Equal((TerminalRole.Console, 2004u), Describe(5, 1));
        Assert.Equal((TerminalRole.VirtualConsole, 2008u), Describe(4, 1));
        Assert.Equal((TerminalRole.Serial, 2020u), Describe(4, 64));
        Assert.False(TerminalDevice.IsTerminal(CharDevice(1, 3)), "/dev/null is no terminal");
        Assert.True(TerminalDevice.IsTerminal(CharDevice(5, 2)), "/dev/ptmx is one");
    }

    private static (TerminalRole, uint) Describe(uint major, uint minor)
    {
        var device = TerminalDevice.Of(CharDevice(major, minor), () => -1);
        return (device.Role, device.InfoId);
    }

    [Fact]
    public void EachFurtherSessionsDevTtyGetsAnIdBeyondCriusTable()
    {
        Assert.Equal(2012u, TerminalDevice.ControllingTerminalInfoId(0));
        Assert.Equal(2178u, TerminalDevice.ControllingTerminalInfoId(1));
        Assert.Equal(2180u, TerminalDevice.ControllingTerminalInfoId(2));
    }

    [Fact]
    public void ReadsTheSlaveOfAControllingTerminalNumber()
    {
        Assert.Equal(0, TerminalDevice.SlaveIndexOfControllingTerminal(136 << 8));
        Assert.Equal(261, TerminalDevice.SlaveIndexOfControllingTerminal((137 << 8) | 5));
        Assert.Equal(300, TerminalDevice.SlaveIndexOfControllingTerminal((136 << 8) | 44 | (1 << 20)));
        Assert.Null(TerminalDevice.SlaveIndexOfControllingTerminal(0));
        Assert.Null(TerminalDevice.SlaveIndexOfControllingTerminal((4 << 8) | 1));
    }
}

/// <summary>Queued terminal bytes taken and put back, on a real pseudo-terminal pair of this process.</summary>
public sealed class TerminalQueueTests : IDisposable
{
    private readonly FileDescriptor master;
    private readonly FileDescriptor slave;

    public TerminalQueueTests()
    {
        master = FileDescriptor.Open("/dev/ptmx", O.RDWR | O.NOCTTY);
        Terminal.SetPtyLock(master, false);
        slave = FileDescriptor.Open($"/dev/pts/{Terminal.PtyNumber(master)}", O.RDWR | O.NOCTTY | O.NONBLOCK);
    }

    public void Dispose()
    {
        slave.Dispose();
        master.Dispose();
    }

    [Fact]
    public void TakesAPartialCanonicalLineAndLeavesTheSettingsAsTheyWere()
    {
        var settings = Terminal.GetAttributes(slave);
        Assert.NotEqual(0u, settings.c_lflag & (uint)LibC.ICANON);
        Write(master, "one\ntw");
        // What the other end wrote may still be on its way: Take lets it in first.
        Assert.Equal("one\ntw", Text(TerminalQueue.Take(slave, master: false)));
        Assert.Equal(settings.c_lflag, Terminal.GetAttributes(slave).c_lflag);
        Assert.Equal(0, Terminal.QueuedInput(slave));
        // The slave echoed what it received (ECHO, ONLCR): that is queued for the master.
        Assert.Equal("one\r\ntw", Text(TerminalQueue.Take(master, master: true)));
    }

    [Fact]
    public void PutsBytesBackWithoutEchoingThemAgainAndWithTheirLineEndsKept()
    {
        Assert.NotEqual(0u, Terminal.GetAttributes(slave).c_lflag & (uint)LibC.ECHO);
        TerminalQueue.Put(slave, master, Encoding.ASCII.GetBytes("one\ntw"), master: false);
        Assert.Empty(TerminalQueue.Take(master, master: true));
        // Canonical mode: the complete line alone can be read, the partial one waits for its end.
        Assert.Equal(4, Terminal.QueuedInput(slave));
        Assert.Equal("one\n", Read(slave, 100));
        Write(master, "o\n");
        Assert.Equal("two\n", ReadWhenQueued(slave));
    }

    [Fact]
    public void TakesAndPutsBackTheMastersQueueWithoutTouchingItsSlave()
    {
        // Settings calls on a master reach its slave: changing them to read the master would end the slave's partial line.
        Write(master, "one\ntw");
        Assert.Equal(4, ReadWhenQueuedCount(slave));
        Assert.Equal("one\r\ntw", Text(TerminalQueue.Take(master, master: true)));
        Assert.Equal(4, Terminal.QueuedInput(slave));
        Assert.Equal(0, TerminalQueue.Put(master, slave, Encoding.ASCII.GetBytes("for the master"), master: true));
        Assert.Equal("for the master", Text(TerminalQueue.Take(master, master: true)));
        Assert.Equal(4, Terminal.QueuedInput(slave));
    }

    [Fact]
    public void PutsBackMoreThanTheLineDisciplineHoldsThroughTheOtherEnd()
    {
        var raw = TerminalSettings.ForReading(Terminal.GetAttributes(slave));
        Terminal.SetAttributes(slave, raw);
        var data = Enumerable.Range(0, 6000).Select(i => (byte)('a' + i % 26)).ToArray();
        Assert.Equal(0, TerminalQueue.Put(slave, master, data, master: false));
        var back = new List<byte>();
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (back.Count < data.Length && DateTime.UtcNow < deadline)
        {
            back.AddRange(Encoding.Latin1.GetBytes(Read(slave, 8192)));
        }
        Assert.Equal(data, back.ToArray());
    }

    [Fact]
    public void RefillSettingsEchoNothingAndEditNothingButKeepLinesAndFlowControl()
    {
        var saved = Terminal.GetAttributes(slave);
        var refill = TerminalSettings.ForRefill(saved);
        Assert.Equal(0u, refill.c_lflag & (uint)(LibC.ECHO | LibC.ISIG | LibC.ECHONL));
        Assert.Equal(0u, refill.c_iflag & (uint)LibC.ICRNL);
        Assert.Equal(saved.c_lflag & (uint)LibC.ICANON, refill.c_lflag & (uint)LibC.ICANON);
        Assert.Equal(saved.c_iflag & (uint)LibC.IXON, refill.c_iflag & (uint)LibC.IXON);
        var entry = TerminalSettings.ToEntry(saved);
        Assert.Equal(Terminal.ControlCharacters, entry.CCc.Count);
        var back = TerminalSettings.ToEntry(TerminalSettings.FromEntry(entry));
        Assert.Equal(entry, back);
    }

    private static unsafe void Write(FileDescriptor fd, string text)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        fixed (byte* p = bytes)
        {
            Assert.Equal(bytes.Length, (int)LibC.write(fd.Value, p, (size_t)(ulong)bytes.Length));
        }
    }

    private static unsafe string Read(FileDescriptor fd, int most)
    {
        var buffer = new byte[most];
        fixed (byte* p = buffer)
        {
            long n = (long)LibC.read(fd.Value, p, (size_t)(ulong)most);
            return n > 0 ? Encoding.Latin1.GetString(buffer, 0, (int)n) : "";
        }
    }

    private static string ReadWhenQueued(FileDescriptor fd)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (Terminal.QueuedInput(fd) == 0 && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(1);
        }
        return Read(fd, 100);
    }

    private static int ReadWhenQueuedCount(FileDescriptor fd)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (Terminal.QueuedInput(fd) == 0 && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(1);
        }
        return Terminal.QueuedInput(fd);
    }

    private static string Text(byte[] bytes) => Encoding.ASCII.GetString(bytes);
}
