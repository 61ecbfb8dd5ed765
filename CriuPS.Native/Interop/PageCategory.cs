using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>Page categories of the PAGEMAP_SCAN ioctl (linux/fs.h, kernel 6.7+).</summary>
[Flags]
public enum PageCategory : ulong
{
    None = 0,
    WpAllowed = 1 << 0,
    Written = 1 << 1,
    File = 1 << 2,
    Present = 1 << 3,
    Swapped = 1 << 4,
    PfnZero = 1 << 5,
    Huge = 1 << 6,
    SoftDirty = 1 << 7,
}
