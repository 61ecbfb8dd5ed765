using System.Runtime.InteropServices;

namespace CriuPS.Native.Interop;

/// <summary>struct iovec, with 64-bit fields so that it can describe another process's memory too.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct IoVec
{
    public ulong Base;
    public ulong Length;

    public const int Size = 16;
}
