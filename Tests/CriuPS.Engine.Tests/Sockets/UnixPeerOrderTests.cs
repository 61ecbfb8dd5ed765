using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Sockets;

namespace CriuPS.Engine.Tests.Sockets;

/// <summary>
/// The order of unix sockets in files.img: CRIU 4.2's restore finds a socket's peer only among the entries before it,
/// unless the peer names it back ("unix: FATAL: Peer N unresolved for M" otherwise).
/// </summary>
public sealed class UnixPeerOrderTests
{
    private static FileEntry Socket(uint id, uint inode, uint peer) =>
        new() { Type = FdTypes.Unixsk, Id = id, Usk = new UnixSkEntry { Id = id, Ino = inode, Peer = peer } };

    private static FileEntry Regular(uint id) => new() { Type = FdTypes.Reg, Id = id, Reg = new RegFileEntry { Id = id, Name = $"/f{id}" } };

    private static string Order(IEnumerable<FileEntry> entries) => string.Join(' ', entries.Select(e => e.Id));

    [Fact]
    public void ASocketConnectedToOneThatDoesNotNameItComesAfterIt()
    {
        // 1: a datagram socket connected to 3, bound and connected to nobody; 2: a file; 4 connected to 3 as well.
        var entries = new[] { Socket(1, 101, 103), Regular(2), Socket(3, 103, 0), Socket(4, 104, 103) };

        Assert.Equal("3 1 2 4", Order(UnixSockets.PeersFirst(entries)));
    }

    [Fact]
    public void PairsAndUnconnectedSocketsKeepTheirPlaces()
    {
        var entries = new[] { Socket(1, 101, 102), Regular(2), Socket(3, 102, 101), Socket(4, 104, 0) };

        Assert.Equal("1 2 3 4", Order(UnixSockets.PeersFirst(entries)));
    }

    [Fact]
    public void AChainIsWrittenFromItsEnd()
    {
        // 1 -> 2 -> 3, none connected back.
        var entries = new[] { Socket(1, 101, 102), Socket(2, 102, 103), Socket(3, 103, 0) };

        Assert.Equal("3 2 1", Order(UnixSockets.PeersFirst(entries)));
    }

    [Fact]
    public void ARingOfOneWayConnectionsEndsWithEveryEntryOnce()
    {
        var entries = new[] { Socket(1, 101, 102), Socket(2, 102, 103), Socket(3, 103, 101) };

        Assert.Equal("3 2 1", Order(UnixSockets.PeersFirst(entries)));
    }
}
