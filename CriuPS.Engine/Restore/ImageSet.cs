using System.Globalization;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Restore.Checks;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Restore;

/// <summary>
/// Every image of a checkpoint, read and cross-checked up front, so that a corrupt or incomplete directory is
/// refused (naming the file and the problem) before any process is created.
/// </summary>
internal sealed class ImageSet
{
    private readonly Dictionary<uint, FileEntry> files;

    private ImageSet(string directory, InventoryEntry inventory, List<PstreeEntry> tree, List<ProcessImages> processes, List<ZombieImages> zombies,
        Dictionary<uint, FileEntry> files, Dictionary<uint, (PipeDataEntry Entry, byte[] Data)> pipeData, StatsEntry? stats)
    {
        Directory = directory;
        Inventory = inventory;
        Tree = tree;
        Processes = processes;
        Zombies = zombies;
        this.files = files;
        PipeData = pipeData;
        Stats = stats;
    }

    public string Directory { get; }

    public InventoryEntry Inventory { get; }

    /// <summary>Every process of the tree, parents before children (pstree.img's order): the root first.</summary>
    public IReadOnlyList<PstreeEntry> Tree { get; }

    /// <summary>The live processes in pstree order: the root first.</summary>
    public IReadOnlyList<ProcessImages> Processes { get; }

    /// <summary>The processes saved as zombies.</summary>
    public IReadOnlyList<ZombieImages> Zombies { get; }

    public ProcessImages Root => Processes[0];

    public IReadOnlyDictionary<uint, FileEntry> Files => files;

    /// <summary>Unread pipe contents by pipe inode.</summary>
    public IReadOnlyDictionary<uint, (PipeDataEntry Entry, byte[] Data)> PipeData { get; }

    public StatsEntry? Stats { get; }

    private readonly Dictionary<string, IReadOnlyList<ImageEntry>> optional = new(StringComparer.Ordinal);

    /// <summary>The entries of an image only some resources have (socket queues, file locks...), or none when it is absent.</summary>
    public IReadOnlyList<ImageEntry> Entries(ImageType type, string? id = null)
    {
        var name = type.FileName(id);
        if (!optional.TryGetValue(name, out var entries))
        {
            var path = Path.Combine(Directory, name);
            try
            {
                entries = System.IO.File.Exists(path) ? ImageReader.ReadAll(path, type) : Array.Empty<ImageEntry>();
            }
            catch (ImageFormatException e)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, e.Message, e.Path, ImageDamage.Action, e);
            }
            optional[name] = entries;
        }
        return entries;
    }

    public FileEntry File(uint id) =>
        files.TryGetValue(id, out var file) ? file : throw ImageDamage.In(Path.Combine(Directory, ImageTypes.Files.FileName(null)), $"no file with id {id}, which another image refers to.");

    /// <summary>
    /// The images a dump just wrote into <paramref name="directory"/>, from the entries it wrote rather than read
    /// back: the same objects, which <see cref="Read"/> would parse again and check against each other.
    /// </summary>
    public static ImageSet FromDump(string directory, InventoryEntry inventory, List<PstreeEntry> tree, List<ProcessImages> processes, List<ZombieImages> zombies,
        Dictionary<uint, FileEntry> files, Dictionary<uint, (PipeDataEntry Entry, byte[] Data)> pipeData, StatsEntry stats) =>
        new(directory, inventory, tree, processes, zombies, files, pipeData, stats);

    public static ImageSet Read(string path)
    {
        var directory = Path.GetFullPath(path);
        // File.Exists cannot tell a missing file from one this session may not see.
        PathAccess.Demand(directory, "the image directory", Faccessat.Read | Faccessat.Search);
        if (!System.IO.Directory.Exists(directory))
        {
            throw new CheckpointException(CheckpointErrorKind.ImageNotFound, $"There is no image directory at '{directory}'.", directory);
        }
        if (!System.IO.File.Exists(Path.Combine(directory, ImageTypes.Inventory.FileName(null))))
        {
            throw new CheckpointException(CheckpointErrorKind.ImageNotFound, $"'{directory}' is not a checkpoint image: it has no inventory.img.", directory);
        }
        try
        {
            var inventory = ImageReader.ReadSingle<InventoryEntry>(directory, ImageTypes.Inventory, null);
            if (PreDumpImages.IsPreDump(directory, inventory))
            {
                throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                    $"'{directory}' is a pre-dump: it holds memory only, copied while the process ran, and cannot be restored by itself.", directory,
                    "Restore the checkpoint taken with -ParentImage naming this pre-dump (Checkpoint-Process without -PreDump).");
            }
            var tree = ReadAll<PstreeEntry>(directory, ImageTypes.Pstree, null);
            TreeChecks.Check(Path.Combine(directory, ImageTypes.Pstree.FileName(null)), tree);
            var cores = tree.ToDictionary(p => p.Pid, p => ReadCore(directory, p.Pid));
            foreach (var (pid, core) in cores)
            {
                CoreChecks.CheckProcess(CorePath(directory, pid), core);
            }
            var zombies = tree.Where(p => cores[p.Pid].Tc.TaskState == ZombieImages.TaskDead).Select(p => new ZombieImages(p, cores[p.Pid])).ToList();
            var processes = tree.Where(p => cores[p.Pid].Tc.TaskState != ZombieImages.TaskDead).Select(p => ReadProcess(directory, p, inventory)).ToList();
            if (processes.Count == 0 || processes[0].Pid != tree[0].Pid)
            {
                throw ImageDamage.In(Path.Combine(directory, ImageTypes.Pstree.FileName(null)), $"the root process {tree[0].Pid} is not a live process.");
            }
            var filesPath = Path.Combine(directory, ImageTypes.Files.FileName(null));
            var files = FileChecks.Index(filesPath, ReadAll<FileEntry>(directory, ImageTypes.Files, null));
            foreach (var process in processes)
            {
                CheckProcess(directory, process, inventory, files);
            }
            var pipeData = new Dictionary<uint, (PipeDataEntry, byte[])>();
            var pipesPath = Path.Combine(directory, ImageTypes.PipesData.FileName(null));
            if (System.IO.File.Exists(pipesPath))
            {
                var items = ImageReader.ReadAll(pipesPath, ImageTypes.PipesData);
                foreach (var (pipeId, item) in ImageDamage.UniqueBy(items, e => ((PipeDataEntry)e.Message).PipeId, pipesPath, "pipe_id", ImageDamage.Entry))
                {
                    pipeData[pipeId] = ((PipeDataEntry)item.Message, item.Payload ?? Array.Empty<byte>());
                }
            }
            var statsPath = Path.Combine(directory, ImageTypes.Stats.FileName("dump"));
            var stats = System.IO.File.Exists(statsPath) ? ImageReader.ReadSingle<StatsEntry>(directory, ImageTypes.Stats, "dump") : null;
            return new ImageSet(directory, inventory, tree, processes, zombies, files, pipeData, stats);
        }
        catch (ImageFormatException e)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, e.Message, e.Path, ImageDamage.Action, e);
        }
        catch (FileNotFoundException e)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"The image in '{directory}' is incomplete: {Path.GetFileName(e.FileName)} is missing.", e.FileName, null, e);
        }
    }

    private static ProcessImages ReadProcess(string directory, PstreeEntry pstree, InventoryEntry inventory)
    {
        string pid = pstree.Pid.ToString(CultureInfo.InvariantCulture);
        var threads = pstree.Threads.Count > 0 ? pstree.Threads.ToList() : new List<uint> { pstree.Pid };
        var cores = threads.Select(t => ((int)t, ReadCore(directory, t))).ToList();
        foreach (var (tid, core) in cores)
        {
            CoreChecks.CheckThread(CorePath(directory, (uint)tid), core);
        }
        var ids = System.IO.File.Exists(Path.Combine(directory, ImageTypes.Ids.FileName(pid)))
            ? ImageReader.ReadSingle<TaskKobjIdsEntry>(directory, ImageTypes.Ids, pid)
            : cores[0].Item2.Ids ?? throw ImageDamage.In(Path.Combine(directory, ImageTypes.Ids.FileName(pid)), "the file is missing, and the core image holds no ids either.");
        var mm = ImageReader.ReadSingle<MmEntry>(directory, ImageTypes.Mm, pid);
        using var pagemap = ImageReader.Open(Path.Combine(directory, ImageTypes.Pagemap.FileName(pid)), ImageTypes.Pagemap);
        var head = pagemap.ReadEntry<PagemapHead>() ?? throw ImageDamage.In(pagemap.Path, "the file is empty: it has no head naming its pages file.");
        var entries = new List<PagemapEntry>();
        while (pagemap.TryReadEntry<PagemapEntry>(out var entry))
        {
            entries.Add(entry);
        }
        string filesId = FilesId(pstree, ids, inventory);
        return new ProcessImages
        {
            Pstree = pstree,
            Cores = cores,
            Ids = ids,
            Mm = mm,
            PagemapHead = head,
            Pagemap = entries,
            FileDescriptors = ReadAll<FdinfoEntry>(directory, ImageTypes.Fdinfo, filesId),
            Fs = ImageReader.ReadSingle<FsEntry>(directory, ImageTypes.Fs, pid),
        };
    }

    // The values a restore relies on, checked against each other before anything is created.
    private static void CheckProcess(string directory, ProcessImages process, InventoryEntry inventory, Dictionary<uint, FileEntry> files)
    {
        string pid = process.Pid.ToString(CultureInfo.InvariantCulture);
        string mmPath = Path.Combine(directory, ImageTypes.Mm.FileName(pid));
        AddressSpaceChecks.Check(mmPath, process.Mm);
        PagemapChecks.Check(Path.Combine(directory, ImageTypes.Pagemap.FileName(pid)), process.Pagemap, process.Mm.Vmas, mmPath);
        FileChecks.CheckReferences(directory, process, Path.Combine(directory, ImageTypes.Fdinfo.FileName(FilesId(process.Pstree, process.Ids, inventory))), files);
    }

    // fdinfo-N.img: N is the files id of the table with CRIU's fdinfo_per_id, the pid without (old images).
    private static string FilesId(PstreeEntry pstree, TaskKobjIdsEntry ids, InventoryEntry inventory) =>
        (inventory.FdinfoPerId ? ids.FilesId : pstree.Pid).ToString(CultureInfo.InvariantCulture);

    private static CoreEntry ReadCore(string directory, uint tid) =>
        ImageReader.ReadSingle<CoreEntry>(directory, ImageTypes.Core, tid.ToString(CultureInfo.InvariantCulture));

    private static string CorePath(string directory, uint tid) => Path.Combine(directory, ImageTypes.Core.FileName(tid.ToString(CultureInfo.InvariantCulture)));

    private static List<T> ReadAll<T>(string directory, ImageType type, string? id) where T : class, Google.Protobuf.IMessage<T>, new()
    {
        using var reader = ImageReader.Open(Path.Combine(directory, type.FileName(id)), type);
        var list = new List<T>();
        while (reader.TryReadEntry<T>(out var entry))
        {
            list.Add(entry);
        }
        return list;
    }
}
