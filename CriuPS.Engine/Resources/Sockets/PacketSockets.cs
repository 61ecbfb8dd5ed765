using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using static CriuPS.Native.Interop.PacketSocket;
using static CriuPS.Native.Interop.SocketOption;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// AF_PACKET sockets (packet_sock_entry in files.img), as CRIU saves them: type and protocol, the interface it is
/// bound to, TPACKET version, reserve, timestamp source, copy threshold, the auxdata/origdev/vnet-header/loss flags,
/// memberships (PACKET_ADD_MEMBERSHIP), the fanout group and the geometry of its receive and transmit rings, with
/// the SOL_SOCKET options; what getsockopt does not tell comes from packet_diag, asked in the socket's network
/// namespace. A ring mapped into memory is an area that maps the socket (<see cref="RingHolder"/>): restore sets
/// the rings up again before the area is mapped, empty (as with CRIU, packets in a ring or in the receive queue are
/// not saved: a packet may be lost on any network). The obsolete SOCK_PACKET type is refused.
/// </summary>
internal sealed class PacketSockets : FileKind
{
    public override FdTypes Type => FdTypes.Packetsk;

    public override bool Handles(DescriptorProbe probe) => probe.Status.Type == FileStatus.Socket && IsPacket(probe);

    public override string? Problem(DescriptorProbe probe, DumpOptions options)
    {
        using var copy = probe.Copy();
        if (copy is null)
        {
            return null; // closed meanwhile
        }
        if (Get(copy, LibC.SOL_SOCKET, LibC.SO_TYPE) == LibC.SOCK_PACKET)
        {
            return $"fd {probe.Fd}: a packet socket of the obsolete type SOCK_PACKET (not supported yet)";
        }
        var diag = Diag(copy, (uint)probe.Status.Inode);
        if (diag is null)
        {
            return null; // closed meanwhile
        }
        if (diag.Memberships.FirstOrDefault(m => m.Count != 1) is { } repeated)
        {
            return $"fd {probe.Fd}: {Describe(diag)} joined one membership (type {repeated.Type}, interface {repeated.InterfaceIndex}) {repeated.Count} times, which CRIU's image cannot hold";
        }
        return null;
    }

    public override FileEntry Dump(DescriptorDump dump)
    {
        var socket = dump.Copy;
        var diag = Diag(socket, (uint)dump.Probe.Status.Inode) ?? throw new CheckpointException(CheckpointErrorKind.DumpFailed,
            $"Process {dump.Probe.Pid}, fd {dump.Probe.Fd}: packet_diag does not know the packet socket {dump.Probe.Link}.", dump.Probe.Pid);
        using var ns = NetworkNamespace.OfSocket(socket);
        var entry = new PacketSockEntry
        {
            Id = dump.Id,
            Type = (uint)diag.Type,
            Protocol = (uint)diag.Protocol,
            Flags = dump.Flags,
            Ifindex = diag.InterfaceIndex,
            Fown = dump.Owner,
            Opts = SocketOptions.Dump(socket, LibC.AF_PACKET),
            Version = diag.Version,
            Reserve = diag.Reserve,
            AuxData = (diag.Flags & PacketDiagSocket.FlagAuxData) != 0,
            OrigDev = (diag.Flags & PacketDiagSocket.FlagOrigDev) != 0,
            VnetHdr = (diag.Flags & PacketDiagSocket.FlagVnetHeader) != 0,
            Loss = (diag.Flags & PacketDiagSocket.FlagLoss) != 0,
            Timestamp = diag.Timestamp,
            CopyThresh = diag.CopyThreshold,
            NsId = dump.Session.ObjectIds.For($"net:[{ns.Inode}]"),
        };
        foreach (var membership in diag.Memberships)
        {
            entry.Mclist.Add(new PacketMclist { Index = membership.InterfaceIndex, Type = membership.Type, Addr = Google.Protobuf.ByteString.CopyFrom(membership.Address) });
        }
        if (diag.Fanout is uint fanout)
        {
            entry.Fanout = fanout;
        }
        if (diag.ReceiveRing is { } rx)
        {
            entry.RxRing = Ring(rx);
        }
        if (diag.TransmitRing is { } tx)
        {
            entry.TxRing = Ring(tx);
        }
        if (!ns.IsEngines)
        {
            entry.CriupsNetnsInode = ns.Inode;
            if (ns.Name is not null)
            {
                entry.CriupsNetnsName = ns.Name;
            }
        }
        dump.Session.Log.Detail($"{Describe(diag)} (process {dump.Probe.Pid}, fd {dump.Probe.Fd}): saved{(ns.IsEngines ? "" : $" in the {ns}")}");
        return new FileEntry { Type = FdTypes.Packetsk, Id = dump.Id, Psk = entry };
    }

    // packet_diag answers dumps only: every packet socket of the namespace, this one picked out.
    private static PacketDiagSocket? Diag(FileDescriptor socket, uint inode)
    {
        using var ns = NetworkNamespace.OfSocket(socket);
        using (ns.Enter())
        {
            return PacketDiag.All().GetValueOrDefault(inode);
        }
    }

    private static PacketRing Ring(PacketDiagRing ring) => new()
    {
        BlockSize = ring.BlockSize,
        BlockNr = ring.BlockCount,
        FrameSize = ring.FrameSize,
        FrameNr = ring.FrameCount,
        RetireTmo = ring.RetireTimeout,
        SizeofPriv = ring.PrivateSize,
        Features = ring.Features,
    };

    private static string Describe(PacketDiagSocket diag) => Describe(diag.Type, diag.Protocol, diag.InterfaceIndex);

    /// <summary>A packet socket as messages and Get-CheckpointImage show it.</summary>
    public static string Describe(int type, int protocol, uint interfaceIndex) =>
        $"packet socket ({(type == LibC.SOCK_DGRAM ? "datagram" : "raw")}, protocol 0x{protocol:x4}, {(interfaceIndex == 0 ? "every interface" : $"interface {interfaceIndex}")})";

    public static string Describe(PacketSockEntry entry) => Describe((int)entry.Type, (int)entry.Protocol, entry.Ifindex);

    /// <summary>
    /// The descriptor of process <paramref name="pid"/> through which it holds the packet socket a memory area maps
    /// (its ring), or null when no descriptor of it holds that socket, or the socket is no packet socket (CRIU cannot
    /// save such a mapping either).
    /// </summary>
    public static DescriptorProbe? RingHolder(int pid, VmaInfo vma) =>
        DescriptorProbe.All(pid).FirstOrDefault(p => p.Status.Type == FileStatus.Socket && p.Status.Inode == vma.Inode && IsPacket(p));

    private static bool IsPacket(DescriptorProbe probe)
    {
        using var copy = probe.Copy();
        return copy is not null && Get(copy, LibC.SOL_SOCKET, LibC.SO_DOMAIN) == LibC.AF_PACKET;
    }

    public override FileDescriptor Open(RestoreSession session, FileEntry file)
    {
        var entry = file.Psk;
        string shown = Describe(entry);
        using var ns = Network.TreeNetwork.SocketNamespace(session, entry.HasCriupsNetnsInode, entry.CriupsNetnsInode,
            entry.HasCriupsNetnsName ? entry.CriupsNetnsName : null, shown);
        if (entry.Type == LibC.SOCK_PACKET)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"files.img: the packet socket id {entry.Id} is of the obsolete type SOCK_PACKET, which CriuPS does not restore.", session.Images.Directory);
        }
        FileDescriptor socket;
        using (ns.Enter())
        {
            try
            {
                // The protocol travels in network byte order.
                socket = Native.Interop.Socket.Create(LibC.AF_PACKET, (int)entry.Type, System.Net.IPAddress.HostToNetworkOrder((short)entry.Protocol) & 0xffff);
            }
            catch (NativeException e) when (e.Errno == Errno.EPERM)
            {
                throw MissingPrivilege.For(Capability.NetRaw, $"Creating the {shown} again", session.Images.Directory, e);
            }
        }
        try
        {
            int errno = TryBind(socket, (int)entry.Ifindex);
            if (errno != 0)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                    $"The {shown} cannot be bound again: {Errno.Describe(errno)} (CriuPS does not save network interfaces: the interface must exist with the same index).",
                    session.Images.Directory);
            }
            Restore(socket, entry, shown);
            SocketOptions.Restore(socket, entry.Opts);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        session.Log.Detail($"{shown}: rebuilt{(ns.IsEngines ? "" : $" in the {ns}")}");
        return socket;
    }

    // In CRIU's order: options, then memberships, then rings (the reserve must come before them), then fanout
    // (which needs the socket bound and running).
    private static void Restore(FileDescriptor socket, PacketSockEntry entry, string shown)
    {
        Step(shown, "PACKET_VERSION", () => Set(socket, LibC.SOL_PACKET, LibC.PACKET_VERSION, (int)entry.Version));
        Step(shown, "PACKET_RESERVE", () => Set(socket, LibC.SOL_PACKET, LibC.PACKET_RESERVE, (int)entry.Reserve));
        Step(shown, "PACKET_TIMESTAMP", () => Set(socket, LibC.SOL_PACKET, LibC.PACKET_TIMESTAMP, (int)entry.Timestamp));
        Step(shown, "PACKET_COPY_THRESH", () => Set(socket, LibC.SOL_PACKET, LibC.PACKET_COPY_THRESH, (int)entry.CopyThresh));
        foreach (var (on, option, name) in new[] { (entry.AuxData, LibC.PACKET_AUXDATA, "PACKET_AUXDATA"), (entry.OrigDev, LibC.PACKET_ORIGDEV, "PACKET_ORIGDEV"),
            (entry.VnetHdr, LibC.PACKET_VNET_HDR, "PACKET_VNET_HDR"), (entry.Loss, LibC.PACKET_LOSS, "PACKET_LOSS") })
        {
            if (on)
            {
                Step(shown, name, () => Set(socket, LibC.SOL_PACKET, option, 1));
            }
        }
        foreach (var membership in entry.Mclist)
        {
            if (membership.Addr.Length > MaxAddressLength)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"files.img: a membership of the {shown} has an address of {membership.Addr.Length} bytes.", shown);
            }
            Step(shown, $"PACKET_ADD_MEMBERSHIP (type {membership.Type}, interface {membership.Index})",
                () => Set(socket, LibC.SOL_PACKET, LibC.PACKET_ADD_MEMBERSHIP, Membership((int)membership.Index, (ushort)membership.Type, membership.Addr.Span)));
        }
        foreach (var (ring, option, name) in new[] { (entry.RxRing, LibC.PACKET_RX_RING, "PACKET_RX_RING"), (entry.TxRing, LibC.PACKET_TX_RING, "PACKET_TX_RING") })
        {
            if (ring is not null)
            {
                Step(shown, $"{name} ({ring.BlockNr} blocks of {ring.BlockSize} bytes)", () => Set(socket, LibC.SOL_PACKET, option,
                    PacketSocket.Ring(ring.BlockSize, ring.BlockNr, ring.FrameSize, ring.FrameNr, ring.RetireTmo, ring.SizeofPriv, ring.Features)));
            }
        }
        if (entry.HasFanout)
        {
            Step(shown, $"PACKET_FANOUT (group {entry.Fanout & 0xffff}, type {entry.Fanout >> 16})", () => Set(socket, LibC.SOL_PACKET, LibC.PACKET_FANOUT, (int)entry.Fanout));
        }
    }

    private static void Step(string shown, string what, Action set)
    {
        try
        {
            set();
        }
        catch (NativeException e)
        {
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed, $"The {shown} cannot take {what} again: {Errno.Describe(e.Errno)}.", shown, null, e);
        }
    }

    public override SavedDescription Saved(ImageSet images, FileEntry file) => new(file.Psk.Flags, file.Psk.Fown);
}
