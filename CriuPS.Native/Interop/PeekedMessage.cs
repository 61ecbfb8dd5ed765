using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>What recvmsg(2) with MSG_PEEK saw: the bytes copied, the sender's name, the control messages and the flags.</summary>
public readonly record struct PeekedMessage(int Length, byte[] SenderName, IReadOnlyList<ControlMessage> Control, int Flags)
{
    /// <summary>The message was longer than the buffer (only part of it was copied).</summary>
    public bool Truncated => (Flags & LibC.MSG_TRUNC) != 0;
}
