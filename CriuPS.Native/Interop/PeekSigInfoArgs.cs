using System.Runtime.InteropServices;

namespace CriuPS.Native.Interop;

/// <summary>struct ptrace_peeksiginfo_args.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct PeekSigInfoArgs
{
    public ulong Offset;
    public uint Flags;
    public int Count;

    /// <summary>Read the process-wide (shared) queue instead of the thread's own.</summary>
    public const uint Shared = 1;
}
