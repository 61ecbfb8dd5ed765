using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Ipc;

/// <summary>
/// System V shared memory attached in a process ("/SYSV0000abcd (deleted)" in maps): as CRIU records it, an area of
/// status VMA_AREA_REGULAR | VMA_AREA_SYSVIPC whose shmid is the segment's id (the inode maps shows), MAP_SHARED, and
/// no pages of its own: the segment's contents are saved once, with the segment (ipcns-shm). fdflags says whether the
/// attachment may be written (O_RDWR) or was made with SHM_RDONLY (O_RDONLY), as it says how a mapped file was opened.
/// At restore the process attaches the segment again (shmat) at the area's address.
/// </summary>
internal static class SysvAttachments
{
    public static bool IsAttachment(VmaInfo vma) => vma.Path.StartsWith("/SYSV", StringComparison.Ordinal);

    public static bool IsAttachment(VmaEntry area) => ((VmaStatus)area.Status & VmaStatus.SysVIpc) != 0;

    /// <summary>Records the segment behind the area.</summary>
    public static void Describe(VmaInfo vma, VmaEntry entry)
    {
        entry.Shmid = vma.Inode;
        entry.Fdflags = (uint)(vma.HasFlag("mw") ? O.RDWR : O.RDONLY);
    }

    /// <summary>Every attachment the tree's processes have, with the process.</summary>
    public static IEnumerable<(int Pid, VmaEntry Area)> Of(DumpSession session) =>
        session.Processes.SelectMany(p => p.Mm.Vmas.Where(IsAttachment).Select(v => (p.Pid, v)));

    /// <summary>
    /// Refuses an attachment that is not one whole segment from its start (a part unmapped or attached at an offset,
    /// which shmat cannot make again), and one whose segment the namespace no longer shows.
    /// </summary>
    public static void Check(DumpSession session, IReadOnlyDictionary<int, SysvObject> segments)
    {
        foreach (var (pid, area) in Of(session))
        {
            if (!segments.TryGetValue((int)area.Shmid, out var segment))
            {
                throw new CheckpointException(CheckpointErrorKind.DumpFailed, $"Process {pid} has System V shared memory segment {area.Shmid} attached at {Range(area)}, which its IPC namespace does not show.", pid);
            }
            if (area.Pgoff != 0 || area.End - area.Start != HugetlbMemory.MappedLength(segment.Size, area.Flags & HugePages.SizeMask))
            {
                throw new CheckpointException(CheckpointErrorKind.Unsupported,
                    $"Process {pid} has part of the {segment} ({segment.Size} bytes) attached at {Range(area)} (offset {area.Pgoff}): CriuPS attaches whole segments again (shmat), so a partly unmapped attachment cannot be saved.", pid);
            }
        }
    }

    /// <summary>Adds the shmat that attaches the area's segment at its address, and the mprotect its saved protection needs beyond what shmat gives.</summary>
    public static void Attach(SyscallBatch batch, VmaEntry area)
    {
        bool writable = (area.Fdflags & O.ACCMODE) != O.RDONLY;
        bool executable = (area.Prot & Mman.PROT_EXEC) != 0;
        ulong flags = (writable ? 0UL : SysvIpc.ShmRdonly) | (executable ? SysvIpc.ShmExec : 0UL);
        batch.Add(() => $"shmat of System V shared memory segment {area.Shmid} at {Range(area)}", RemoteCall.Shmat((int)area.Shmid, new Address(area.Start), flags));
        ulong given = Mman.PROT_READ | (writable ? Mman.PROT_WRITE : 0) | (executable ? Mman.PROT_EXEC : 0);
        if (area.Prot != given)
        {
            batch.Add(() => $"mprotect of the System V shared memory at {Range(area)}", RemoteCall.Mprotect(Range(area), area.Prot));
        }
    }

    private static AddressRange Range(VmaEntry area) => new(area.Start, area.End);
}
