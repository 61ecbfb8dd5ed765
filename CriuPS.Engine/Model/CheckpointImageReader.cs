using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Digests;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Cpu;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Resources.Sockets;
using CriuPS.Engine.Restore;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Model;

/// <summary>Builds the <see cref="CheckpointImage"/> view of an image directory (CRIU's or ours).</summary>
public static class CheckpointImageReader
{
    public static CheckpointImage Read(string path)
    {
        if (PreDumpImages.Find(path) is { } preDump)
        {
            return PreDump(preDump);
        }
        return Read(ImageSet.Read(path));
    }

    /// <summary>The image of a set of images, read or just written (<see cref="ImageSet.FromDump"/>).</summary>
    internal static CheckpointImage Read(ImageSet images)
    {
        var processes = images.Tree.Select(entry =>
            images.Processes.FirstOrDefault(p => p.Pid == (int)entry.Pid) is { } live
                ? Process(images, live)
                : Zombie(images.Zombies.First(z => z.Pid == (int)entry.Pid))).ToList();
        var inventory = images.Inventory;
        var dump = images.Stats?.Dump;
        return new CheckpointImage
        {
            Path = images.Directory,
            RootProcessId = images.Root.Pid,
            Name = images.Root.Name,
            ProcessCount = processes.Count,
            ThreadCount = processes.Sum(p => p.Threads.Count),
            MemoryBytes = processes.Sum(p => p.MemoryBytes),
            Pages = processes.Sum(p => p.MemoryBytes) / Page.Size,
            ParentMemoryBytes = images.Processes.Sum(p => ParentBytes(p.Pagemap)),
            ParentPath = PageChain.ParentDirectory(images.Directory),
            HasDigests = HasDigests(images.Directory),
            FileCount = images.Files.Count,
            FrozenTime = FrozenTime(dump),
            TotalTime = TotalTime(dump, images.Directory),
            Kernel = inventory.HasCriupsKernel ? inventory.CriupsKernel : null,
            Cpu = CpuDescription.Saved(images),
            CreatedAt = CreatedAt(inventory, images.Directory),
            WrittenBy = WrittenBy(inventory),
            Processes = processes,
        };
    }

    private static CheckpointImage PreDump(PreDumpImages images)
    {
        var inventory = images.Inventory;
        var dump = images.Stats?.Dump;
        return new CheckpointImage
        {
            Path = images.Directory,
            RootProcessId = (int)inventory.CriupsRootPid,
            Name = inventory.HasCriupsRootName ? inventory.CriupsRootName : "",
            ProcessCount = images.Pagemaps.Count,
            ThreadCount = 0,
            MemoryBytes = images.Pagemaps.Values.Sum(PresentBytes),
            Pages = images.Pagemaps.Values.Sum(PresentBytes) / Page.Size,
            ParentMemoryBytes = images.Pagemaps.Values.Sum(ParentBytes),
            ParentPath = PageChain.ParentDirectory(images.Directory),
            HasDigests = HasDigests(images.Directory),
            PreDump = true,
            FileCount = 0,
            FrozenTime = FrozenTime(dump),
            TotalTime = TotalTime(dump, images.Directory),
            Kernel = inventory.HasCriupsKernel ? inventory.CriupsKernel : null,
            CreatedAt = CreatedAt(inventory, images.Directory),
            WrittenBy = WrittenBy(inventory),
            Processes = [],
        };
    }

    private static bool HasDigests(string directory) => File.Exists(Path.Combine(directory, DigestManifest.FileName));

    private static long PresentBytes(IEnumerable<PagemapEntry> pagemap) =>
        pagemap.Where(e => !e.IsInParent()).Sum(e => (long)e.Range().Length.Value);

    private static long ParentBytes(IEnumerable<PagemapEntry> pagemap) =>
        pagemap.Where(e => e.IsInParent()).Sum(e => (long)e.Range().Length.Value);

    private static ImageProcess Process(ImageSet images, ProcessImages p)
    {
        // What this image holds; runs left to a parent image are counted by ParentMemoryBytes.
        var runs = p.Pagemap.Where(e => !e.IsInParent()).Select(e => e.Range()).ToList();
        var saved = SavedBytes(p.Mm.Vmas, runs);
        return new ImageProcess
        {
            Id = p.Pid,
            ParentId = (int)p.Pstree.Ppid,
            ProcessGroupId = (int)p.Pstree.Pgid,
            SessionId = (int)p.Pstree.Sid,
            Name = p.Name,
            State = State(p.LeaderCore),
            Threads = p.Cores.Select(c => new ImageThread
            {
                Id = c.Tid,
                Name = c.Core.ThreadCore?.HasComm == true ? c.Core.ThreadCore.Comm : p.Name,
                InstructionPointer = c.Core.ThreadInfo.Gpregs.Ip,
            }).ToList(),
            MemoryAreas = p.Mm.Vmas.Select((v, i) => new ImageMemoryArea
            {
                Start = v.Start,
                End = v.End,
                Protection = Protection(v),
                Kind = Kind(v),
                Path = ((VmaStatus)v.Status & (VmaStatus.FilePrivate | VmaStatus.FileShared)) != 0 && images.Files.TryGetValue((uint)v.Shmid, out var f) ? (f.Memfd is null ? f.Reg?.Name : MemfdName(images, f.Memfd)) : null,
                SavedBytes = saved[i],
            }).ToList(),
            Files = p.FileDescriptors.Select(fd => Descriptor(images, fd)).ToList(),
            MemoryBytes = runs.Sum(r => (long)r.Length.Value),
        };
    }

    private static ImageProcess Zombie(ZombieImages zombie) => new()
    {
        Id = zombie.Pid,
        ParentId = (int)zombie.Pstree.Ppid,
        ProcessGroupId = (int)zombie.Pstree.Pgid,
        SessionId = (int)zombie.Pstree.Sid,
        Name = zombie.Core.Tc.Comm,
        State = "zombie",
        Threads = Array.Empty<ImageThread>(),
        MemoryAreas = Array.Empty<ImageMemoryArea>(),
        Files = Array.Empty<ImageFileDescriptor>(),
        MemoryBytes = 0,
    };

    private static ImageFileDescriptor Descriptor(ImageSet images, FdinfoEntry fd)
    {
        images.Files.TryGetValue(fd.Id, out var file);
        var (target, flags, position) = file?.Type switch
        {
            FdTypes.Reg => (file.Reg.Name, (int)file.Reg.Flags, (long?)file.Reg.Pos),
            FdTypes.Pipe => ($"pipe:[{file.Pipe.PipeId}]", (int)file.Pipe.Flags, null),
            FdTypes.Tty => (images.Files.TryGetValue(file.Tty.RegfId, out var node) && node.Reg is not null ? node.Reg.Name : "terminal", (int)file.Tty.Flags, null),
            FdTypes.Eventfd => ("anon_inode:[eventfd]", (int)file.Efd.Flags, null),
            FdTypes.Signalfd => ("anon_inode:[signalfd]", (int)file.Sgfd.Flags, null),
            FdTypes.Timerfd => ("anon_inode:[timerfd]", (int)file.Tfd.Flags, null),
            FdTypes.Inotify => ("anon_inode:inotify", (int)file.Ify.Flags, null),
            FdTypes.Eventpoll => ("anon_inode:[eventpoll]", (int)file.Epfd.Flags, null),
            FdTypes.Unixsk => (UnixSocketName.Describe(file.Usk), (int)file.Usk.Flags, null),
            FdTypes.Memfd => (MemfdName(images, file.Memfd), (int)file.Memfd.Flags, (long?)file.Memfd.Pos),
            FdTypes.Fifo when images.Files.TryGetValue(file.Fifo.HasRegfId ? file.Fifo.RegfId : file.Fifo.Id, out var path) && path.Reg is not null =>
                (path.Reg.Name, (int)path.Reg.Flags, null),
            FdTypes.Inetsk => (InetSocketRestore.Describe(file.Isk, images.Directory), (int)file.Isk.Flags, null),
            FdTypes.Packetsk => (PacketSockets.Describe(file.Psk), (int)file.Psk.Flags, null),
            FdTypes.Netlinksk => (NetlinkSockets.Describe(file.Nlsk), (int)file.Nlsk.Flags, null),
            FdTypes.Fanotify => ("anon_inode:[fanotify]", (int)file.Ffy.Flags, null),
            _ => (file?.Type.ToString() ?? "?", 0, null),
        };
        return new ImageFileDescriptor
        {
            Fd = (int)fd.Fd,
            Type = fd.Type.ToString().ToUpperInvariant(),
            Target = target,
            Flags = flags,
            CloseOnExec = (fd.Flags & 1) != 0,
            Position = position,
        };
    }

    // "memfd:NAME", as /proc shows it without the leading slash and " (deleted)".
    private static string MemfdName(ImageSet images, MemfdFileEntry memfd) =>
        images.Entries(Images.ImageTypes.Memfd).Select(e => (MemfdInodeEntry)e.Message).FirstOrDefault(m => m.InodeId == memfd.InodeId) is { } inode
            ? $"memfd:{inode.Name}" : "memfd";

    /// <summary>running, or stopped when a signal (SIGSTOP...) had stopped the process.</summary>
    internal static string State(CoreEntry leader) =>
        leader.Tc.TaskState == Resources.Process.TaskAttributes.TaskStopped ? "stopped" : "running";

    // The bytes of each area that the pagemap's runs cover, in one sweep over both (each in address order): a process
    // of 10,000 areas and as many runs would otherwise cost 100 million comparisons.
    private static long[] SavedBytes(IReadOnlyList<VmaEntry> areas, List<AddressRange> runs)
    {
        runs.Sort((a, b) => a.Start.Value.CompareTo(b.Start.Value));
        var saved = new long[areas.Count];
        var order = Enumerable.Range(0, areas.Count).OrderBy(i => areas[i].Start).ToList();
        int first = 0;
        foreach (int i in order)
        {
            var area = new AddressRange(areas[i].Start, areas[i].End);
            while (first < runs.Count && runs[first].End <= area.Start)
            {
                first++;
            }
            for (int r = first; r < runs.Count && runs[r].Start < area.End; r++)
            {
                saved[i] += Overlap(runs[r], area);
            }
        }
        return saved;
    }

    private static TimeSpan? FrozenTime(DumpStatsEntry? dump) => dump is null ? null : TimeSpan.FromMicroseconds(dump.FrozenTime);

    private static TimeSpan? TotalTime(DumpStatsEntry? dump, string directory)
    {
        if (dump is null || !dump.HasCriupsTotalTime)
        {
            return null;
        }
        // A duration no TimeSpan holds (292,000 years) is damage, not a slow checkpoint.
        return dump.CriupsTotalTime <= (ulong)(TimeSpan.MaxValue.Ticks / TimeSpan.TicksPerMicrosecond)
            ? TimeSpan.FromMicroseconds(dump.CriupsTotalTime)
            : throw ImageDamage.In(Path.Combine(directory, ImageTypes.Stats.FileName("dump")),
                $"entries[0].dump.criups_total_time is {dump.CriupsTotalTime} µs, longer than any checkpoint takes.");
    }

    // CriuPS records when; for CRIU's images the inventory's time on disk is the best guess.
    private static DateTimeOffset CreatedAt(InventoryEntry inventory, string directory)
    {
        string path = Path.Combine(directory, ImageTypes.Inventory.FileName(null));
        if (!inventory.HasCriupsCreatedAt)
        {
            return new DateTimeOffset(File.GetLastWriteTimeUtc(path));
        }
        return inventory.CriupsCreatedAt <= (ulong)DateTimeOffset.MaxValue.ToUnixTimeMilliseconds()
            ? DateTimeOffset.FromUnixTimeMilliseconds((long)inventory.CriupsCreatedAt)
            : throw ImageDamage.In(path, $"entries[0].criups_created_at is {inventory.CriupsCreatedAt} ms after 1970, beyond the year 9999.");
    }

    private static string WrittenBy(InventoryEntry inventory) => inventory.HasCriupsVersion ? $"CriuPS {inventory.CriupsVersion}" : "CRIU";

    internal static long Overlap(AddressRange a, AddressRange b)
    {
        ulong start = Math.Max(a.Start.Value, b.Start.Value);
        ulong end = Math.Min(a.End.Value, b.End.Value);
        return end > start ? (long)(end - start) : 0;
    }

    internal static string Protection(VmaEntry v) =>
        $"{((v.Prot & 1) != 0 ? 'r' : '-')}{((v.Prot & 2) != 0 ? 'w' : '-')}{((v.Prot & 4) != 0 ? 'x' : '-')}{((v.Flags & 1) != 0 ? 's' : 'p')}";

    internal static string Kind(VmaEntry v)
    {
        var status = (VmaStatus)v.Status;
        return (status & VmaStatus.Vsyscall) != 0 ? "vsyscall"
        : (status & VmaStatus.Vdso) != 0 ? "vdso"
        : (status & VmaStatus.Vvar) != 0 ? "vvar"
        : (status & VmaStatus.Heap) != 0 ? "heap"
        : (v.Flags & Native.Interop.Mman.MAP_GROWSDOWN) != 0 ? "stack"
        : (status & VmaStatus.Memfd) != 0 ? ((status & VmaStatus.FileShared) != 0 ? "shared-memfd" : "memfd")
        : (status & VmaStatus.FileShared) != 0 ? "shared-file"
        : (status & VmaStatus.FilePrivate) != 0 ? "file"
        : (status & VmaStatus.AnonShared) != 0 ? "shared-anon"
        : (status & VmaStatus.SysVIpc) != 0 ? "sysv-shm"
        : "anon";
    }
}
