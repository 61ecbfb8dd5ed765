using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Resources.Ipc;
using CriuPS.Engine.Resources.Sockets;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// The memory areas of a process (mm-PID.img's vmas): which area is what, on dump; and, on restore, the same
/// areas recreated at the same addresses with the same protection and flags before their pages are filled in.
/// </summary>
internal static partial class AddressSpace
{
    // VmFlags of smaps that become mmap flags (as CRIU records them); "dp" is the mapping type MAP_DROPPABLE, "ht"
    // MAP_HUGETLB with its page size (HugetlbMemory), "lf" (lock on fault) and "sl" (sealed) have fields of their own. What else VmFlags show follows from these, the
    // protection and the file (rd wr ex sh mr mw me ms ac), or the kernel sets it on areas of its own (vDSO, devices).
    private static readonly (string Flag, ulong MapFlag)[] MapFlagsFromVmFlags =
    {
        ("gd", Mman.MAP_GROWSDOWN), ("lo", Mman.MAP_LOCKED), ("nr", Mman.MAP_NORESERVE),
    };

    // VmFlags of smaps that are madvise() settings, recorded as bit (1 << MADV_x).
    private static readonly (string Flag, int Advice)[] AdviceFromVmFlags =
    {
        ("sr", Mman.MADV_SEQUENTIAL), ("rr", Mman.MADV_RANDOM), ("dc", Mman.MADV_DONTFORK), ("dd", Mman.MADV_DONTDUMP),
        ("mg", Mman.MADV_MERGEABLE), ("hg", Mman.MADV_HUGEPAGE), ("nh", Mman.MADV_NOHUGEPAGE), ("wf", Mman.MADV_WIPEONFORK),
    };

    /// <summary>Records every memory area of the process (except our own injection area) in the mm image.</summary>
    public static List<SavedVma> Dump(DumpedProcess process, DumpSession session)
    {
        var saved = new List<SavedVma>();
        foreach (var vma in OwnAreas(process))
        {
            var entry = Describe(vma, process, session);
            process.Mm.Vmas.Add(entry);
            saved.Add(new SavedVma(vma, entry, PolicyFor((VmaStatus)entry.Status)));
        }
        return saved;
    }

    /// <summary>
    /// The areas of the process with the pages policy of each, from /proc alone: a pre-dump saves pages only, and
    /// records neither areas nor the files behind them.
    /// </summary>
    public static List<SavedVma> PageAreas(DumpedProcess process, DumpSession session)
    {
        var areas = new List<SavedVma>();
        foreach (var vma in OwnAreas(process))
        {
            RefuseUnsupported(vma, process, session);
            var entry = Layout(vma);
            areas.Add(new SavedVma(vma, entry, PolicyFor((VmaStatus)entry.Status)));
        }
        return areas;
    }

    private static IEnumerable<VmaInfo> OwnAreas(DumpedProcess process) =>
        process.Vmas.Where(vma => !vma.Range.Overlaps(process.Injection.Scratch.Range));

    /// <summary>The problem with an area of process <paramref name="pid"/> CriuPS cannot save, or null (used by the pre-flight check too).</summary>
    public static string? Unsupported(int pid, VmaInfo vma, DumpOptions options)
    {
        if (vma.HasFlag("io") || vma.HasFlag("pf"))
        {
            return vma.Path is "[vvar]" or "[vvar_vclock]" ? null : $"device mapping {vma.Range} of {vma.Path} (VM_IO/VM_PFNMAP)";
        }
        if (vma.HasFlag("ss"))
        {
            return $"shadow stack {vma.Range} (this CPU/kernel pair is not supported yet)";
        }
        if (vma.IsDeleted && !vma.IsAnonymous && !HugetlbMemory.IsAnonymous(vma) && !SharedMemory.IsSharedAnonymous(vma) && !Memfds.IsMemfd(vma.Path) && !SysvAttachments.IsAttachment(vma))
        {
            return GhostFiles.Problem($"mapping {vma.Range} of", vma.Path, FileStatus.Of(MapFiles.PathOf(pid, vma)), options);
        }
        if (IsSocket(vma) && PacketSockets.RingHolder(pid, vma) is null)
        {
            return $"mapping {vma.Range} of {vma.Path}, which is not the ring of a packet socket the process holds";
        }
        if (vma.Path.StartsWith("anon_inode:", StringComparison.Ordinal))
        {
            return $"mapping {vma.Range} of {vma.Path}";
        }
        return null;
    }

    private static void RefuseUnsupported(VmaInfo vma, DumpedProcess process, DumpSession session)
    {
        var problem = Unsupported(process.Pid, vma, session.Options);
        if (problem is not null)
        {
            throw new CheckpointException(CheckpointErrorKind.Unsupported, $"Process {process.Pid} has a {problem}, which CriuPS cannot save.", process.Pid);
        }
    }

    // The area's entry with the objects behind it recorded: shared memory saved, files registered.
    private static VmaEntry Describe(VmaInfo vma, DumpedProcess process, DumpSession session)
    {
        RefuseUnsupported(vma, process, session);
        var entry = Layout(vma);
        var status = (VmaStatus)entry.Status;
        if ((status & VmaStatus.AnonShared) != 0)
        {
            entry.Shmid = vma.Inode;
            entry.Fdflags = (uint)O.RDWR;
            entry.CriupsShmemSize = SharedMemory.Dump(session, process.Pid, vma);
        }
        else if ((status & VmaStatus.SysVIpc) != 0)
        {
            SysvAttachments.Describe(vma, entry);
        }
        else if ((status & VmaStatus.Socket) != 0)
        {
            // The ring of a packet socket: the area maps the socket's file, saved as a descriptor already.
            var holder = PacketSockets.RingHolder(process.Pid, vma);
            entry.Shmid = (holder is null ? null : session.Files.FindDescription(process.Pid, holder.Fd, holder.Status, accessMode: null))
                ?? throw new CheckpointException(CheckpointErrorKind.DumpFailed, $"Process {process.Pid} maps {vma.Path} at {vma.Range}, and no saved descriptor holds that socket.", process.Pid);
        }
        else if ((status & VmaStatus.Memfd) != 0)
        {
            entry.Shmid = Memfds.ForMapping(session, process.Pid, vma);
            entry.Fdflags = (uint)MapFiles.OpenFlags(process.Pid, vma);
            entry.CriupsLocks.AddRange(MappedFileLocks.Claim(session, process, vma));
        }
        else if ((status & (VmaStatus.FileShared | VmaStatus.FilePrivate)) != 0)
        {
            entry.CriupsLocks.AddRange(MappedFileLocks.Claim(session, process, vma));
            // A shared mapping may be made writable later (VmFlags "mw") only when its file was opened for writing,
            // even while it is read-only now, and an OFD write lock needs a description open for writing, as the one
            // it was taken through: such an area is mapped again from a file opened as the process opened it.
            int openFlags = vma.Shared || entry.CriupsLocks.Any(l => l.Type == (uint)Fcntl.F_WRLCK) ? MapFiles.OpenFlags(process.Pid, vma) : O.RDONLY;
            entry.Shmid = RegularFiles.ForMapping(session, process.Pid, vma, openFlags);
            entry.Fdflags = (uint)openFlags;
        }
        return entry;
    }

    // What an area is from /proc alone: place, protection, flags, advice and kind, no object behind it recorded yet.
    private static VmaEntry Layout(VmaInfo vma)
    {
        ulong prot = (vma.Readable ? Mman.PROT_READ : 0) | (vma.Writable ? Mman.PROT_WRITE : 0) | (vma.Executable ? Mman.PROT_EXEC : 0);
        // A droppable area is a mapping type of its own, which maps shows as private (CRIU records it so too).
        ulong flags = vma.Shared ? Mman.MAP_SHARED : vma.HasFlag("dp") ? Mman.MAP_DROPPABLE : Mman.MAP_PRIVATE;
        foreach (var (flag, mapFlag) in MapFlagsFromVmFlags)
        {
            if (vma.HasFlag(flag))
            {
                flags |= mapFlag;
            }
        }
        if (HugetlbMemory.IsHugetlb(vma))
        {
            flags |= HugetlbMemory.MapFlags(vma);
        }
        ulong advice = 0;
        foreach (var (flag, madv) in AdviceFromVmFlags)
        {
            if (vma.HasFlag(flag))
            {
                advice |= 1UL << madv;
            }
        }

        var entry = new VmaEntry
        {
            Start = vma.Start.Value,
            End = vma.End.Value,
            Pgoff = vma.Offset,
            Shmid = 0,
            Prot = (uint)prot,
            Fd = -1,
        };
        if (advice != 0)
        {
            entry.Madv = advice;
        }
        if (vma.HasFlag("lo") && vma.HasFlag("lf"))
        {
            entry.CriupsLockOnFault = true;
        }
        if (vma.HasFlag("sl"))
        {
            entry.CriupsSealed = true;
        }

        VmaStatus status = VmaStatus.Regular;
        switch (vma.Path)
        {
            case "[vsyscall]":
                status = VmaStatus.Vsyscall | VmaStatus.AnonPrivate; // never "regular": nothing to dump or map
                flags |= Mman.MAP_ANONYMOUS;
                break;
            case "[vdso]":
                status |= VmaStatus.Vdso | VmaStatus.AnonPrivate;
                flags |= Mman.MAP_ANONYMOUS;
                break;
            case "[vvar]" or "[vvar_vclock]":
                status |= VmaStatus.Vvar | VmaStatus.AnonPrivate;
                flags |= Mman.MAP_ANONYMOUS;
                break;
            case "[heap]":
                status |= VmaStatus.Heap | VmaStatus.AnonPrivate;
                flags |= Mman.MAP_ANONYMOUS;
                break;
            default:
                if (vma.IsAnonymous || (HugetlbMemory.IsAnonymous(vma) && !vma.Shared))
                {
                    status |= VmaStatus.AnonPrivate;
                    flags |= Mman.MAP_ANONYMOUS;
                }
                else if (SysvAttachments.IsAttachment(vma))
                {
                    status |= VmaStatus.SysVIpc; // as CRIU: regular, and no file status
                }
                else if (SharedMemory.IsSharedAnonymous(vma))
                {
                    status |= VmaStatus.AnonShared;
                    flags |= Mman.MAP_ANONYMOUS;
                }
                else if (IsSocket(vma))
                {
                    status |= VmaStatus.Socket; // as CRIU: no file status, so no pages saved
                }
                else if (Memfds.IsMemfd(vma.Path))
                {
                    status |= VmaStatus.Memfd | (vma.Shared ? VmaStatus.FileShared : VmaStatus.FilePrivate);
                }
                else
                {
                    status |= vma.Shared ? VmaStatus.FileShared : VmaStatus.FilePrivate;
                }
                break;
        }
        entry.Flags = (uint)flags;
        entry.Status = (uint)status;
        return entry;
    }

    private static bool IsSocket(VmaInfo vma) => vma.Path.StartsWith("socket:", StringComparison.Ordinal);

    private static PagePolicy PolicyFor(VmaStatus status)
    {
        if ((status & VmaStatus.Vdso) != 0)
        {
            return PagePolicy.All;
        }
        // Shared memory comes back with its object (System V segments too): its pages are saved once, with the object.
        // A packet ring comes back empty, as with CRIU.
        if ((status & (VmaStatus.Vvar | VmaStatus.Vsyscall | VmaStatus.FileShared | VmaStatus.AnonShared | VmaStatus.SysVIpc | VmaStatus.Socket)) != 0)
        {
            return PagePolicy.None;
        }
        return PagePolicy.Private;
    }
}
