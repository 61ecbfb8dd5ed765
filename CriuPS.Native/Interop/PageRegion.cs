using System.Runtime.InteropServices;

namespace CriuPS.Native.Interop;

/// <summary>struct page_region: a run of pages with the same categories.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct PageRegion
{
    public ulong Start;
    public ulong End;
    public ulong Categories;
}
