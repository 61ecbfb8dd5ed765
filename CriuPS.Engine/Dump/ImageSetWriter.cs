using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Process;
using CriuPS.Engine.Resources.Sockets;
using CriuPS.Engine.Restore;
using Google.Protobuf;

namespace CriuPS.Engine.Dump;

/// <summary>Writes the image files of a dump (all but the pages, which are streamed while memory is copied).</summary>
internal static class ImageSetWriter
{
    /// <summary>CRTOOLS_IMAGES_V1_1: every image but the inventory carries the common magic.</summary>
    private const uint ImageVersion = 2;

    /// <summary>CRIU's PRE_DUMP_READ: the pre-dump read the pages with process_vm_readv while the process ran.</summary>
    private const uint PreDumpRead = 2;

    /// <summary>
    /// A pre-dump's images, as CRIU's: the inventory and each process's pagemap (its pages are written already; the
    /// link to the parent image is made with the directory). The rest of the state is saved by the final dump.
    /// </summary>
    public static void WritePreDump(DumpSession session)
    {
        // No root_ids: the kernel objects of the tree are looked at by the final dump.
        var inventory = Inventory(session);
        inventory.PreDumpMode = PreDumpRead;
        session.WriteSingle(ImageTypes.Inventory, null, inventory);
        var pids = TreePids.Of(session);
        foreach (var process in session.Processes)
        {
            WritePagemap(session, process, pids);
        }
    }

    public static void Write(DumpSession session)
    {
        var pids = TreePids.Of(session);
        pids.Renumber(session.Processes.SelectMany(p => p.Cores.Values).Concat(session.Zombies.Select(z => z.Core)).Cast<IMessage>()
            .Concat(session.Files.Entries).Concat(session.TtyInfos).Concat(session.ExtraImages.Values.SelectMany(e => e.Select(i => i.Message))));
        var inventory = Inventory(session);
        inventory.RootIds = ProcessTree.InventoryRootIds(session);
        inventory.RootCgSet = session.Processes[0].LeaderCore.Tc.CgSet;
        inventory.CriupsRootPid = pids.InRoot(session.Processes[0].Pid);
        session.WriteSingle(ImageTypes.Inventory, null, inventory);

        var tree = session.TreeOrder.Select(pid => pids.ForImage(session.Processes.FirstOrDefault(p => p.Pid == pid)?.Pstree ?? session.Zombies.First(z => z.Pid == pid).Pstree)).ToList();
        using (var pstree = session.CreateImage(ImageTypes.Pstree, null))
        {
            foreach (var entry in tree)
            {
                pstree.WriteEntry(entry);
            }
        }

        foreach (var zombie in session.Zombies)
        {
            session.WriteSingle(ImageTypes.Core, pids.Name(zombie.Pid), zombie.Core);
        }

        var writtenTables = new HashSet<uint>();
        foreach (var process in session.Processes)
        {
            var pid = pids.Name(process.Pid);
            foreach (var (tid, core) in process.Cores)
            {
                session.WriteSingle(ImageTypes.Core, pids.Name(tid), core);
            }
            session.WriteSingle(ImageTypes.Ids, pid, process.Ids);
            session.WriteSingle(ImageTypes.Mm, pid, process.Mm);
            session.WriteSingle(ImageTypes.Fs, pid, process.Fs);
            WritePagemap(session, process, pids);
            // Processes that share their descriptor table (CLONE_FILES) share one fdinfo image.
            if (writtenTables.Add(process.Ids.FilesId))
            {
                using var fdinfo = session.CreateImage(ImageTypes.Fdinfo, process.Ids.FilesId.ToString(System.Globalization.CultureInfo.InvariantCulture));
                foreach (var fd in process.FileDescriptors)
                {
                    fdinfo.WriteEntry(fd);
                }
            }
        }

        using (var files = session.CreateImage(ImageTypes.Files, null))
        {
            foreach (var file in UnixSockets.PeersFirst(session.Files.Entries))
            {
                files.WriteEntry(file);
            }
        }

        if (session.PipeData.Count > 0)
        {
            using var pipes = session.CreateImage(ImageTypes.PipesData, null);
            foreach (var (entry, data) in session.PipeData)
            {
                pipes.WriteEntry(entry);
                pipes.WriteRaw(data);
            }
        }

        // CRIU's restore expects seccomp.img even when no thread has a filter.
        var seccomp = new SeccompEntry();
        seccomp.SeccompFilters.Add(session.SeccompFilters);
        session.WriteSingle(ImageTypes.Seccomp, null, seccomp);

        foreach (var ((type, id), entries) in session.ExtraImages)
        {
            using var image = session.CreateImage(type, id);
            image.WriteEntries(entries);
        }

        if (session.TtyInfos.Count > 0)
        {
            using var ttys = session.CreateImage(ImageTypes.TtyInfo, null);
            foreach (var tty in session.TtyInfos)
            {
                ttys.WriteEntry(tty);
            }
        }
        session.Written = Remember(session, pids, inventory, tree);
    }

    // What Write wrote, as the images' reader would find it (ImageSet): the dump's result is made from it (in
    // CheckpointImageReader) without reading back what was just written, 15 to 30 ms of a dump of 10,000 areas.
    private static Written Remember(DumpSession session, TreePids pids, InventoryEntry inventory, List<PstreeEntry> tree)
    {
        var tables = new Dictionary<uint, List<FdinfoEntry>>();
        foreach (var process in session.Processes)
        {
            tables.TryAdd(process.Ids.FilesId, process.FileDescriptors);
        }
        var processes = session.Processes.Select(process =>
        {
            var entry = tree.First(e => e.Pid == pids.InRoot(process.Pid));
            var cores = process.Cores.Select(c => (Tid: (int)pids.InRoot(c.Key), c.Value))
                .OrderBy(c => entry.Threads.IndexOf((uint)c.Tid)).ToList();
            return new ProcessImages
            {
                Pstree = entry,
                Cores = cores,
                Ids = process.Ids,
                Mm = process.Mm,
                PagemapHead = process.PagemapHead,
                Pagemap = process.Pagemap,
                FileDescriptors = tables[process.Ids.FilesId],
                Fs = process.Fs,
            };
        }).ToList();
        var zombies = session.Zombies.Select(z => new ZombieImages(tree.First(e => e.Pid == pids.InRoot(z.Pid)), z.Core)).ToList();
        return new Written(inventory, tree, processes, zombies, session.Files.Entries.ToDictionary(f => f.Id),
            session.PipeData.ToDictionary(p => p.Entry.PipeId, p => (p.Entry, p.Data)));
    }

    /// <summary>The images <see cref="Write"/> wrote, as <see cref="ImageSet.Read"/> reads them, with stats-dump.</summary>
    public static ImageSet AsWritten(DumpSession session, string directory)
    {
        var written = session.Written ?? throw new InvalidOperationException("the dump's images were not written");
        return ImageSet.FromDump(directory, written.Inventory, written.Tree, written.Processes, written.Zombies, written.Files, written.PipeData,
            new StatsEntry { Dump = session.Stats });
    }

    /// <summary>What a dump wrote, kept for its result.</summary>
    internal sealed record Written(InventoryEntry Inventory, List<PstreeEntry> Tree, List<ProcessImages> Processes, List<ZombieImages> Zombies,
        Dictionary<uint, FileEntry> Files, Dictionary<uint, (PipeDataEntry Entry, byte[] Data)> PipeData);

    private static void WritePagemap(DumpSession session, DumpedProcess process, TreePids pids)
    {
        using var pagemap = session.CreateImage(ImageTypes.Pagemap, pids.Name(process.Pid));
        pagemap.WriteEntry(process.PagemapHead);
        foreach (var entry in process.Pagemap)
        {
            pagemap.WriteEntry(entry);
        }
    }

    private static InventoryEntry Inventory(DumpSession session) => new()
    {
        ImgVersion = ImageVersion,
        FdinfoPerId = true,
        NsPerId = true,
        Lsmtype = Lsmtype.NoLsm,
        DumpCriuRunId = session.RunId,
        NetworkLockMethod = session.InetSockets.Lock is null ? NetworkLock.MethodSkip : NetworkLock.MethodNftables,
        CriupsVersion = typeof(ImageSetWriter).Assembly.GetName().Version?.ToString(3) ?? "0.0.0",
        CriupsKernel = File.ReadAllText("/proc/sys/kernel/osrelease").Trim(),
        CriupsCreatedAt = (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        CriupsRootPid = (uint)session.Processes[0].Pid,
        CriupsRootName = session.Processes[0].Stat.Comm,
    };

    /// <summary>stats-dump: timings and page counts, written once the process is gone or resumed.</summary>
    public static void WriteStats(DumpSession session) =>
        session.WriteSingle(ImageTypes.Stats, "dump", new StatsEntry { Dump = session.Stats });
}
