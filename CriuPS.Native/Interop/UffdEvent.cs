using CriuPS.Native.Memory;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>The kinds of struct uffd_msg.</summary>
public enum UffdEvent : byte
{
    PageFault = 0x12,
    Fork = 0x13,
    Remap = 0x14,
    Remove = 0x15,
    Unmap = 0x16,
}
