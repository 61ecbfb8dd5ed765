using System.Buffers.Binary;

namespace CriuPS.Native.Interop;

/// <summary>One control message (cmsg) of a received message.</summary>
public sealed record ControlMessage(int Level, int Type, byte[] Data)
{
    public const int SCM_RIGHTS = 1, SCM_CREDENTIALS = 2;

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
