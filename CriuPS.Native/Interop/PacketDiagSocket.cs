namespace CriuPS.Native.Interop;

/// <summary>
/// What the kernel tells of one AF_PACKET socket through PACKET_DIAG (linux/packet_diag.h): what getsockopt does not
/// show (memberships, rings, the copy threshold).
/// </summary>
/// <param name="Protocol">The protocol it receives (ETH_P_*), in host order.</param>
/// <param name="Flags">PDI_RUNNING (1), PDI_AUXDATA (2), PDI_ORIGDEV (4), PDI_VNETHDR (8), PDI_LOSS (16).</param>
/// <param name="Fanout">The fanout group id | its type &lt;&lt; 16 (flags included), or null when it joined none.</param>
public sealed record PacketDiagSocket(uint Inode, int Type, int Protocol, uint InterfaceIndex, uint Version, uint Reserve, uint CopyThreshold,
    uint Timestamp, uint Flags, IReadOnlyList<PacketDiagMembership> Memberships, uint? Fanout, PacketDiagRing? ReceiveRing, PacketDiagRing? TransmitRing)
{
    public const uint FlagRunning = 1, FlagAuxData = 2, FlagOrigDev = 4, FlagVnetHeader = 8, FlagLoss = 16;
}
