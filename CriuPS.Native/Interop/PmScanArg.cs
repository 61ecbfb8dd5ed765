using System.Runtime.InteropServices;

namespace CriuPS.Native.Interop;

/// <summary>struct pm_scan_arg.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct PmScanArg
{
    public ulong Size;
    public ulong Flags;
    public ulong Start;
    public ulong End;
    public ulong WalkEnd;
    public ulong Vec;
    public ulong VecLen;
    public ulong MaxPages;
    public ulong CategoryInverted;
    public ulong CategoryMask;
    public ulong CategoryAnyOfMask;
    public ulong ReturnMask;
}
