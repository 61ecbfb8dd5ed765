using CriuPS.Native.Memory;

namespace CriuPS.Native.Proc;

/// <summary>One line of /proc/PID/maps with the VmFlags of /proc/PID/smaps.</summary>
public sealed record VmaInfo(
    AddressRange Range,
    bool Readable,
    bool Writable,
    bool Executable,
    bool Shared,
    ulong Offset,
    uint DevMajor,
    uint DevMinor,
    ulong Inode,
    string Path,
    VmFlagSet VmFlags)
{
    public Address Start => Range.Start;

    /// <summary>The size of the pages backing the area (smaps' KernelPageSize): 4096, or a huge page size on hugetlb areas; 0 when read from maps alone.</summary>
    public ulong KernelPageSize { get; init; }

    public Address End => Range.End;

    /// <summary>Kernel-named areas such as [heap], [stack], [vdso], [vvar], [vvar_vclock], [vsyscall], [anon:name].</summary>
    public bool IsSpecial => Path.StartsWith('[');

    public bool IsAnonymous => Inode == 0 && (Path.Length == 0 || IsSpecial);

    /// <summary>The kernel appends this to the name of a mapped file that was unlinked.</summary>
    public bool IsDeleted => Path.EndsWith(" (deleted)", StringComparison.Ordinal);

    public bool HasFlag(string vmFlag) => VmFlags.Contains(vmFlag);

    /// <summary>Whether another line of maps shows this very area: place, protection, offset, file and name (VmFlags aside).</summary>
    public bool IsSameArea(VmaInfo other) =>
        Range == other.Range && Readable == other.Readable && Writable == other.Writable && Executable == other.Executable
        && Shared == other.Shared && Offset == other.Offset && DevMajor == other.DevMajor && DevMinor == other.DevMinor
        && Inode == other.Inode && Path == other.Path;

    public override string ToString() =>
        $"{Range} {(Readable ? 'r' : '-')}{(Writable ? 'w' : '-')}{(Executable ? 'x' : '-')}{(Shared ? 's' : 'p')} {Offset:x8} {DevMajor:x2}:{DevMinor:x2} {Inode} {Path}";
}
