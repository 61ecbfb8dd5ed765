using System.Runtime.InteropServices;
using CriuPS.Native.Memory;

namespace CriuPS.Native.Interop;

/// <summary>struct uffd_msg: an event and its three 64-bit arguments.</summary>
[StructLayout(LayoutKind.Explicit, Size = Userfaultfd.MessageSize)]
public struct UffdMessage
{
    [FieldOffset(0)]
    public UffdEvent Event;

    [FieldOffset(8)]
    public ulong Argument0;

    [FieldOffset(16)]
    public ulong Argument1;

    [FieldOffset(24)]
    public ulong Argument2;

    /// <summary>The faulting address of a page fault.</summary>
    public readonly Address FaultAddress => new(Argument1);

    /// <summary>The child's userfaultfd of a fork, now open in this process.</summary>
    public readonly int ForkDescriptor => (int)(uint)Argument0;

    /// <summary>Where an mremap took pages from, where it put them, and how many bytes.</summary>
    public readonly (Address From, Address To, ByteCount Length) Remap => (new(Argument0), new(Argument1), new(Argument2));

    /// <summary>The range a remove (madvise) or unmap event covers.</summary>
    public readonly AddressRange Range => new(Argument0, Argument1);
}
