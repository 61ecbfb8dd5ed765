using System.Globalization;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Privileges;
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
                throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, e.Message, e.Path, "The image is damaged; take a new checkpoint.", e);
            }
            optional[name] = entries;
        }
        return entries;
    }

    public FileEntry File(uint id) =>
        files.TryGetValue(id, out var file) ? file : throw new CheckpointException(
            CheckpointErrorKind.ImageCorrupt, $"{Path.Combine(Directory, "files.img")}: no file with id {id}, which another image refers to.", Path.Combine(Directory, "files.img"));

    public static ImageSet Read(string path)
    {
        var directory = Path.GetFullPath(path);
        // File.Exists cannot tell a missing file from one this session may not see.
        if (PathAccess.Denial(directory, "the image directory", Faccessat.Read | Faccessat.Search) is { } denied)
        {
            throw denied;
        }
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
            if (tree.Count == 0)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"{Path.Combine(directory, "pstree.img")} lists no process.", directory);
            }
            var cores = tree.ToDictionary(p => p.Pid, p => ImageReader.ReadSingle<CoreEntry>(directory, ImageTypes.Core, p.Pid.ToString(CultureInfo.InvariantCulture)));
            var zombies = tree.Where(p => cores[p.Pid].Tc?.TaskState == ZombieImages.TaskDead).Select(p => new ZombieImages(p, cores[p.Pid])).ToList();
            var processes = tree.Where(p => cores[p.Pid].Tc?.TaskState != ZombieImages.TaskDead).Select(p => ReadProcess(directory, p, inventory)).ToList();
            if (processes.Count == 0 || processes[0].Pid != tree[0].Pid)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"{Path.Combine(directory, "pstree.img")}: the root process {tree[0].Pid} is not a live process.", directory);
            }
            var files = ReadAll<FileEntry>(directory, ImageTypes.Files, null).ToDictionary(f => f.Id);
            var pipeData = new Dictionary<uint, (PipeDataEntry, byte[])>();
            var pipesPath = Path.Combine(directory, ImageTypes.PipesData.FileName(null));
            if (System.IO.File.Exists(pipesPath))
            {
                foreach (var item in ImageReader.ReadAll(pipesPath, ImageTypes.PipesData))
                {
                    var entry = (PipeDataEntry)item.Message;
                    pipeData[entry.PipeId] = (entry, item.Payload ?? Array.Empty<byte>());
                }
            }
            var statsPath = Path.Combine(directory, ImageTypes.Stats.FileName("dump"));
            var stats = System.IO.File.Exists(statsPath) ? ImageReader.ReadSingle<StatsEntry>(directory, ImageTypes.Stats, "dump") : null;
            return new ImageSet(directory, inventory, tree, processes, zombies, files, pipeData, stats);
        }
        catch (ImageFormatException e)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, e.Message, e.Path, "The image is damaged; take a new checkpoint.", e);
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
        var cores = threads.Select(t => ((int)t, ImageReader.ReadSingle<CoreEntry>(directory, ImageTypes.Core, t.ToString(CultureInfo.InvariantCulture)))).ToList();
        foreach (var (tid, core) in cores)
        {
            if (core.Mtype != CoreEntry.Types.March.X8664 || core.ThreadInfo is null)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                    $"{Path.Combine(directory, $"core-{tid}.img")}: the thread was saved on a {core.Mtype} machine; this one is x86-64.", directory);
            }
        }
        if (cores[0].Item2.Tc is null)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"{Path.Combine(directory, $"core-{pid}.img")} has no task core for the process.", directory);
        }
        var ids = System.IO.File.Exists(Path.Combine(directory, ImageTypes.Ids.FileName(pid)))
            ? ImageReader.ReadSingle<TaskKobjIdsEntry>(directory, ImageTypes.Ids, pid)
            : cores[0].Item2.Ids ?? throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"No ids-{pid}.img in {directory}.", directory);
        var mm = ImageReader.ReadSingle<MmEntry>(directory, ImageTypes.Mm, pid);
        using var pagemap = ImageReader.Open(Path.Combine(directory, ImageTypes.Pagemap.FileName(pid)), ImageTypes.Pagemap);
        var head = pagemap.ReadEntry<PagemapHead>() ?? throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"{pagemap.Path} is empty.", pagemap.Path);
        var entries = new List<PagemapEntry>();
        while (pagemap.TryReadEntry<PagemapEntry>(out var entry))
        {
            entries.Add(entry);
        }
        string filesId = (inventory.FdinfoPerId ? ids.FilesId : pstree.Pid).ToString(CultureInfo.InvariantCulture);
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
