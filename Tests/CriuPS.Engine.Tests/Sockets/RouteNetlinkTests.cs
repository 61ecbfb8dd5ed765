using System.Buffers.Binary;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Network;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Tests.Sockets;

/// <summary>
/// The NETLINK_ROUTE layer of the network namespace images: requests built with nested attributes, iproute2 dumps
/// read back or refused, and the kernel of a private namespace asked for its devices, addresses and routes.
/// </summary>
public sealed class RouteNetlinkTests
{
    [Fact]
    public void NestedAttributesCarryTheLengthOfWhatTheyHold()
    {
        var message = new NetlinkBuilder(RouteNetlink.RtmNewlink, 0, new byte[16])
            .Add(3, "in0").Begin(18).Add(1, "veth").Begin(2).Begin(1).Append(new byte[16]).Add(3, "out0").End().End().End().ToArray();

        Assert.Equal(message.Length, (int)BinaryPrimitives.ReadUInt32LittleEndian(message));
        var top = NetlinkMessages.Attributes(message.AsSpan(32))!;
        Assert.Equal("in0", NetlinkMessages.Text(top[3]));
        var info = NetlinkMessages.Attributes(top[18])!;
        Assert.Equal("veth", NetlinkMessages.Text(info[1]));
        var peer = NetlinkMessages.Attributes(info[2])![1];
        Assert.Equal(16 + 12, peer.Length); // the peer's ifinfomsg, then its name attribute (4 + "out0\0", padded)
        Assert.Equal("out0", NetlinkMessages.Text(NetlinkMessages.Attributes(peer.AsSpan(16))![3]));
    }

    [Fact]
    public void AnAttributeLongerThanItsMessageIsDamage() =>
        Assert.Null(NetlinkMessages.Attributes(new byte[] { 40, 0, 3, 0, (byte)'l', (byte)'o', 0, 0 }));

    [Theory]
    [InlineData(new byte[] { 0x22, 0x12, 0x36, 0x48 }, "does not start with the magic")]
    [InlineData(new byte[] { 0x22, 0x12, 0x36, 0x47, 200, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0 }, "claims 200 bytes, of 16 left")]
    public void AnAddressDumpThatIsNotOneIsImageCorrupt(byte[] bytes, string said)
    {
        var directory = Directory.CreateTempSubdirectory("criups-ifaddr").FullName;
        try
        {
            File.WriteAllBytes(Path.Combine(directory, "ifaddr-5.img"), bytes);
            var e = Assert.Throws<CheckpointException>(() => IpDumpImages.Read(directory, ImageTypes.Ifaddr, "5", IpDumpImages.AddressMagic));
            Assert.Equal(CheckpointErrorKind.ImageCorrupt, e.Kind);
            Assert.Contains(said, e.Message);
            Assert.StartsWith(Path.Combine(directory, "ifaddr-5.img"), e.Message);
        }
        finally
        {
            Directory.Delete(directory, true);
        }
    }

    [Fact]
    public void APrivateNamespaceHasItsLoopbackWithItsAddressesAndARouteSavedWhileDownComesBack() => PrivateNetwork.Run(() =>
    {
        using var netlink = RouteNetlink.Open();
        var links = NetworkLinks.Read(netlink);
        var lo = Assert.Single(links);
        Assert.True(lo.IsLoopback);
        Assert.Equal("lo", lo.Name);
        Assert.Empty(NetworkLinks.Problems(links));
        Assert.Contains(IpDumpImages.Addresses(netlink), m => m.Length > 16 && m[16] == 2); // 127.0.0.1, AF_INET

        // 10.9.0.0/24 on lo, as a dump of a device without carrier shows it: with RTNH_F_LINKDOWN, which a request may not carry.
        var rtmsg = new byte[] { 2, 24, 0, 0, 254, 4, 0, 1, 0x10, 0, 0, 0 };
        var route = new NetlinkBuilder(RouteNetlink.RtmNewroute, NetlinkMessages.NlmFMulti, rtmsg).Add(15, 254u).Add(1, new byte[] { 10, 9, 0, 0 }).Add(4, 1u).ToArray();
        Assert.Equal(1, IpDumpImages.Replay(netlink, [route], RouteNetlink.RtmNewroute, "route-5.img"));
        Assert.Contains(IpDumpImages.Routes(netlink, ipv6: false), m => m[17] == 24 && m.AsSpan(28).IndexOf(new byte[] { 10, 9, 0, 0 }) >= 0);
        Assert.Equal(1, IpDumpImages.Replay(netlink, [route], RouteNetlink.RtmNewroute, "route-5.img")); // there already: no error
    });
}
