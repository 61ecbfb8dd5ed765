using CriuPS.Engine.Resources.Files;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Tests.Files;

/// <summary>Leases as /proc/locks and fdinfo show them, and as filelocks.img keeps them (CRIU's FL_LEASE).</summary>
public sealed class LeaseTests
{
    [Theory]
    [InlineData("lock:\t1: LEASE  ACTIVE    READ  4242 00:2d:1234 0 EOF", "ACTIVE", false, "read lease")]
    [InlineData("lock:\t1: LEASE  ACTIVE    WRITE 4242 00:2d:1234 0 EOF", "ACTIVE", true, "write lease")]
    [InlineData("1: LEASE  BREAKING  UNLCK 4242 fe:00:99 0 EOF", "BREAKING", false, "unlck lease")]
    public void ReadsALeaseLine(string line, string mode, bool write, string shown)
    {
        var lease = LockInfo.TryParse(line.StartsWith("lock:", StringComparison.Ordinal) ? line["lock:".Length..] : line);
        Assert.NotNull(lease);
        Assert.Equal(LockKind.Lease, lease.Kind);
        Assert.Equal(mode, lease.Mode);
        Assert.Equal(write, lease.IsWrite);
        Assert.Equal(shown, lease.ToString());
    }

    [Fact]
    public void SavesALeaseAsCriuDoes()
    {
        var lease = LockInfo.TryParse("1: LEASE  ACTIVE    WRITE 4242 00:2d:1234 0 EOF")!;
        var saved = FileLocks.Entry(lease, 4242, 7);
        Assert.Equal(8u, saved.Flag); // FL_LEASE of criu/include/file-lock.h
        Assert.Equal((uint)Fcntl.F_WRLCK, saved.Type);
        Assert.Equal(7, saved.Fd);
        Assert.Equal("write lease", FileLocks.Describe(saved));
    }
}
