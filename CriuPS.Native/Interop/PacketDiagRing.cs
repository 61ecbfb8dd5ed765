namespace CriuPS.Native.Interop;

/// <summary>One ring of a packet socket (struct packet_diag_ring): its geometry, as PACKET_RX_RING/TX_RING set it.</summary>
public sealed record PacketDiagRing(uint BlockSize, uint BlockCount, uint FrameSize, uint FrameCount, uint RetireTimeout, uint PrivateSize, uint Features);
