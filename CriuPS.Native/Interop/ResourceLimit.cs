using System.Runtime.InteropServices;

namespace CriuPS.Native.Interop;

[StructLayout(LayoutKind.Sequential)]
public struct ResourceLimit
{
    public ulong Current;
    public ulong Maximum;

    public const ulong Infinity = ulong.MaxValue;
}
