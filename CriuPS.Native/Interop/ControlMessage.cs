using System.Buffers.Binary;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>One control message (cmsg) of a received message.</summary>
public sealed record ControlMessage(int Level, int Type, byte[] Data)
{
    /// <summary>The descriptor numbers an SCM_RIGHTS message carries.</summary>
    public int[] Descriptors()
    {
        var fds = new int[Data.Length / 4];
        for (int i = 0; i < fds.Length; i++)
        {
            fds[i] = BinaryPrimitives.ReadInt32LittleEndian(Data.AsSpan(i * 4));
        }
        return fds;
    }
}
