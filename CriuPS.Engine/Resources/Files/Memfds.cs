using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// memfds (memfd_create): files of the kernel's internal shmem mount, open as descriptors and/or mapped. CRIU's format:
/// a file_entry `memfd` (MemfdFileEntry) for each open description and one for the mappings of each memfd, all
/// pointing to one MemfdInodeEntry in memfd.img (name, size, owner, mode, seals) whose contents are in
/// pagemap-shmem-SHMID.img (SHMID: the inode). Restore: the engine creates each memfd again, opens every description
/// from it through /proc/self/fd, and the processes pull them in or map them; seals go on before any mapping is made,
/// except F_SEAL_FUTURE_WRITE, which would refuse the writable shared mappings a process had before it was sealed.
/// A memfd made with MFD_HUGETLB (hugetlb_flag) is made so again, and filled through a mapping (hugetlbfs has no write).
/// </summary>
internal sealed class Memfds : FileKind
{
    private const string Prefix = "/memfd:";
    private const string DeletedSuffix = " (deleted)";

    // Flags that would change the file if we passed them again on reopen.
    private const int CreationFlags = O.CREAT | O.EXCL | O.TRUNC | O.TMPFILE;

    /// <summary>What this dump saved: memfd inodes (inode → memfd.img id) and the file entries of mapped memfds (inode → file id).</summary>
    private sealed class SavedMemfds
    {
        public Dictionary<ulong, uint> Inodes { get; } = new();

        public Dictionary<ulong, uint> MappedFiles { get; } = new();
    }

    /// <summary>One memfd created again: our descriptor of it, and the seals it gets once every process has mapped it.</summary>
    private sealed record CreatedMemfd(MemfdInodeEntry Entry, FileDescriptor File, int LateSeals);

    private sealed class CreatedMemfds : IDisposable
    {
        public Dictionary<uint, CreatedMemfd> Inodes { get; } = new();

        /// <summary>Descriptions the processes map memfds through, by memfd and open flags.</summary>
        public Dictionary<(uint InodeId, uint Flags), FileDescriptor> ForMappings { get; } = new();

        public void Dispose()
        {
            foreach (var file in Inodes.Values.Select(m => m.File).Concat(ForMappings.Values))
            {
                file.Dispose();
            }
        }
    }

    public override FdTypes Type => FdTypes.Memfd;

    public static bool IsMemfd(string path) => path.StartsWith(Prefix, StringComparison.Ordinal);

    public override bool Handles(DescriptorProbe probe) => probe.Status.Type == FileStatus.Regular && IsMemfd(probe.Link);

    public override SavedDescription Saved(ImageSet images, FileEntry file) => new(file.Memfd.Flags, file.Memfd.Fown);

    public override FileEntry Dump(DescriptorDump dump)
    {
        // Our copy may be write-only: the contents are read through a new read-only description.
        uint inodeId = DumpInode(dump.Session, dump.Probe.Link, $"/proc/self/fd/{dump.Copy.Value}");
        return new FileEntry
        {
            Type = FdTypes.Memfd,
            Id = dump.Id,
            Memfd = new MemfdFileEntry { Id = dump.Id, Flags = dump.Flags, Pos = dump.Info.Position, Fown = dump.Owner, InodeId = inodeId },
        };
    }

    /// <summary>The file entry that the mappings of the memfd behind an area refer to (as CRIU, one per memfd; each area has its own open flags).</summary>
    public static uint ForMapping(DumpSession session, int pid, VmaInfo vma)
    {
        var saved = session.State<SavedMemfds>();
        if (!saved.MappedFiles.TryGetValue(vma.Inode, out var id))
        {
            uint inodeId = DumpInode(session, vma.Path, MapFiles.PathOf(pid, vma));
            id = session.Files.NewId();
            session.Files.Add(new FileEntry
            {
                Type = FdTypes.Memfd,
                Id = id,
                Memfd = new MemfdFileEntry { Id = id, Flags = O.RDONLY, Pos = 0, Fown = FileOwner.None, InodeId = inodeId },
            });
            saved.MappedFiles[vma.Inode] = id;
        }
        return id;
    }

    // Saves a memfd once: its attributes in memfd.img and its contents as shared memory pages.
    private static uint DumpInode(DumpSession session, string link, string readablePath)
    {
        using var file = FileDescriptor.Open(readablePath, O.RDONLY);
        var status = FileStatus.Of(file);
        var saved = session.State<SavedMemfds>();
        if (saved.Inodes.TryGetValue(status.Inode, out var id))
        {
            return id;
        }
        id = (uint)saved.Inodes.Count + 1;
        saved.Inodes[status.Inode] = id;
        // CRIU's shmid of a memfd is its inode number, cut to 32 bits.
        uint shmid = (uint)status.Inode;
        ShmemPages.Dump(session, file, status.Size, shmid);
        var name = link[Prefix.Length..];
        name = name.EndsWith(DeletedSuffix, StringComparison.Ordinal) ? name[..^DeletedSuffix.Length] : name;
        var entry = new MemfdInodeEntry
        {
            Name = name,
            Uid = status.Uid,
            Gid = status.Gid,
            Size = status.Size,
            Shmid = shmid,
            Seals = (uint)Memfd.GetSeals(file),
            InodeId = id,
            Mode = status.Mode,
        };
        // A memfd made with MFD_HUGETLB lives on hugetlbfs; as CRIU, the flag it is made with again, with its page size.
        if (HugetlbMemory.PageSizeOfFile(readablePath) is { } pageSize)
        {
            entry.HugetlbFlag = Memfd.MFD_HUGETLB | HugePages.SizeFlag(pageSize);
        }
        session.AddImageEntry(ImageTypes.Memfd, null, entry);
        return id;
    }

    public override FileDescriptor Open(RestoreSession session, FileEntry file)
    {
        var entry = file.Memfd;
        var description = Reopen(Created(session, entry.InodeId), (int)entry.Flags);
        Lseek.Set(description, entry.Pos);
        return description;
    }

    /// <summary>Our description of a saved memfd, open with <paramref name="openFlags"/>, that a process maps it through.</summary>
    public static FileDescriptor ForMapping(RestoreSession session, uint fileId, uint openFlags)
    {
        var file = session.Images.File(fileId);
        if (file.Type != FdTypes.Memfd || file.Memfd is null)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                $"{Path.Combine(session.Images.Directory, "files.img")}: file {fileId}, mapped as a memfd, is a {file.Type}.", session.Images.Directory);
        }
        var created = session.State<CreatedMemfds>();
        var key = (file.Memfd.InodeId, openFlags);
        if (!created.ForMappings.TryGetValue(key, out var description))
        {
            description = Reopen(Created(session, file.Memfd.InodeId), (int)openFlags);
            created.ForMappings[key] = description;
        }
        return description;
    }

    /// <summary>Adds the seals that had to wait until every process mapped its memfds (F_SEAL_FUTURE_WRITE).</summary>
    public static void ApplyLateSeals(RestoreSession session)
    {
        foreach (var memfd in session.State<CreatedMemfds>().Inodes.Values.Where(m => m.LateSeals != 0))
        {
            Memfd.AddSeals(memfd.File, memfd.LateSeals);
        }
    }

    // A new open file description of the memfd, as opening its /proc/self/fd link gives.
    private static FileDescriptor Reopen(CreatedMemfd memfd, int flags) =>
        FileDescriptor.Open($"/proc/self/fd/{memfd.File.Value}", flags & ~CreationFlags);

    private static CreatedMemfd Created(RestoreSession session, uint inodeId)
    {
        var created = session.State<CreatedMemfds>();
        if (!created.Inodes.TryGetValue(inodeId, out var memfd))
        {
            var entry = session.Images.Entries(ImageTypes.Memfd).Select(e => (MemfdInodeEntry)e.Message).FirstOrDefault(e => e.InodeId == inodeId)
                ?? throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                    $"{Path.Combine(session.Images.Directory, "memfd.img")} has no memfd {inodeId}, which files.img refers to.", session.Images.Directory);
            memfd = Create(session, entry);
            created.Inodes[inodeId] = memfd;
        }
        return memfd;
    }

    private static CreatedMemfd Create(RestoreSession session, MemfdInodeEntry entry)
    {
        int seals = (int)entry.Seals;
        // MFD_NOEXEC_SEAL gives F_SEAL_EXEC (and sealing); MFD_EXEC keeps the kernel's noexec default (vm.memfd_noexec)
        // away; without MFD_ALLOW_SEALING the memfd is born with F_SEAL_SEAL alone.
        uint flags = (seals & Memfd.F_SEAL_EXEC) != 0 ? Memfd.MFD_NOEXEC_SEAL
            : Memfd.MFD_EXEC | (seals == Memfd.F_SEAL_SEAL ? 0 : Memfd.MFD_ALLOW_SEALING);
        if (entry.HasHugetlbFlag)
        {
            flags |= entry.HugetlbFlag; // MFD_HUGETLB and the page size (checked with the image)
        }
        var file = Memfd.Create(entry.Name, flags);
        try
        {
            Inode.Fchown(file, entry.Uid, entry.Gid);
            if (entry.HasMode)
            {
                Inode.Fchmod(file, entry.Mode & 0xFFF);
            }
            Inode.Ftruncate(file, entry.Size);
            ShmemPages.Restore(session, entry.Shmid, file, entry.Size);
            int born = Memfd.GetSeals(file);
            int late = (seals & Memfd.F_SEAL_FUTURE_WRITE) != 0 ? seals & (Memfd.F_SEAL_FUTURE_WRITE | Memfd.F_SEAL_SEAL) & ~born : 0;
            int now = seals & ~late & ~born;
            if (now != 0)
            {
                Memfd.AddSeals(file, now);
            }
            session.Log.Detail($"memfd:{entry.Name}: {entry.Size} bytes, seals 0x{seals:x}");
            return new CreatedMemfd(entry, file, late);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }
}
