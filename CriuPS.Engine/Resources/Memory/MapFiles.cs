using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>/proc/PID/map_files: the file behind each mapped area, which the engine can open and stat.</summary>
internal static class MapFiles
{
    public static string PathOf(int pid, VmaInfo vma) => $"/proc/{pid}/map_files/{vma.Start.Value:x}-{vma.End.Value:x}";

    /// <summary>How the mapped file was opened (the mode of the map_files link says), as CRIU records it in fdflags.</summary>
    public static int OpenFlags(int pid, VmaInfo vma) => (FileStatus.OfLink(PathOf(pid, vma)).Mode & 0x180) switch
    {
        0x180 => O.RDWR,
        0x080 => O.WRONLY,
        _ => O.RDONLY,
    };
}
