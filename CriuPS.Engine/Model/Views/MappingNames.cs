using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Memory;
using Tmds.Linux;

namespace CriuPS.Engine.Model.Views;

/// <summary>
/// How crit x mems describes what a VMA maps (explore_mems in crit/crit/__main__.py): shared memory segments are
/// numbered in the order they are met across the whole image, as crit numbers them.
/// </summary>
internal sealed class MappingNames(FileNames files)
{
    private readonly Dictionary<ulong, int> segments = new();

    public string Of(VmaEntry vma)
    {
        var status = (VmaStatus)vma.Status;
        string name = status switch
        {
            _ when status.HasFlag(VmaStatus.SysVIpc) => $"ips[{Segment(vma.Shmid):x}]",
            _ when status.HasFlag(VmaStatus.AnonShared) => $"shmem[{Segment(vma.Shmid):x}]",
            _ when status.HasFlag(VmaStatus.Socket) => $"packet[{Segment(vma.Shmid):x}]",
            _ when (status & (VmaStatus.FilePrivate | VmaStatus.FileShared)) != 0 => FileMapping(vma, status),
            _ when status.HasFlag(VmaStatus.Stack) => "[stack]",
            _ when status.HasFlag(VmaStatus.Vsyscall) => "[vsyscall]",
            _ when status.HasFlag(VmaStatus.Vdso) => "[vdso]",
            _ when (vma.Flags & (uint)LibC.MAP_GROWSDOWN) != 0 => "[stack?]",
            _ => "",
        };
        // crit marks what CRIU does not treat as ordinary memory of the process.
        return status.HasFlag(VmaStatus.Regular) ? name : $"{name} *".TrimStart();
    }

    private string FileMapping(VmaEntry vma, VmaStatus status)
    {
        string name = files.Of(FdTypes.Reg, (uint)vma.Shmid);
        if (vma.Pgoff != 0)
            name += $" + 0x{vma.Pgoff:x}";
        return status.HasFlag(VmaStatus.FileShared) ? name + " (s)" : name;
    }

    private int Segment(ulong id)
    {
        if (!segments.TryGetValue(id, out int number))
            segments[id] = number = segments.Count + 1;
        return number;
    }
}
