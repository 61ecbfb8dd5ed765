using System.Runtime.InteropServices;

namespace CriuPS.Native.Interop;

/// <summary>The answer of PTRACE_GET_RSEQ_CONFIGURATION.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct RseqConfiguration
{
    public ulong RseqAbiPointer;
    public uint RseqAbiSize;
    public uint Signature;
    public uint Flags;
    public uint Pad;
}
