namespace CriuPS.Native.Interop;

/// <summary>One multicast/promiscuous membership of a packet socket (struct packet_diag_mclist).</summary>
public sealed record PacketDiagMembership(uint InterfaceIndex, uint Count, ushort Type, byte[] Address);
