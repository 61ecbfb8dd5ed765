using System.Globalization;
using System.Text.RegularExpressions;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;

namespace CriuPS.Engine.Restore;

/// <summary>
/// A pre-dump's images, as `criu pre-dump` and Checkpoint-Process -PreDump write them: an inventory that says it is
/// one (pre_dump_mode), each process's pagemap and pages, the dump statistics, and no process tree.
/// </summary>
internal sealed partial class PreDumpImages
{
    private PreDumpImages(string directory, InventoryEntry inventory, StatsEntry? stats, IReadOnlyDictionary<int, IReadOnlyList<PagemapEntry>> pagemaps)
    {
        Directory = directory;
        Inventory = inventory;
        Stats = stats;
        Pagemaps = pagemaps;
    }

    public string Directory { get; }

    public InventoryEntry Inventory { get; }

    public StatsEntry? Stats { get; }

    /// <summary>The entries of each process's pagemap, by PID.</summary>
    public IReadOnlyDictionary<int, IReadOnlyList<PagemapEntry>> Pagemaps { get; }

    /// <summary>Whether the image directory holds a pre-dump: an inventory that says so, and no process tree.</summary>
    public static bool IsPreDump(string directory, InventoryEntry inventory) =>
        inventory.HasPreDumpMode && !File.Exists(Path.Combine(directory, ImageTypes.Pstree.FileName(null)));

    /// <summary>Reads the pre-dump at <paramref name="path"/>; null when there is no pre-dump there (a dump, or no image at all).</summary>
    public static PreDumpImages? Find(string path)
    {
        var directory = Path.GetFullPath(path);
        try
        {
            if (!File.Exists(Path.Combine(directory, ImageTypes.Inventory.FileName(null))))
            {
                return null;
            }
            var inventory = ImageReader.ReadSingle<InventoryEntry>(directory, ImageTypes.Inventory, null);
            if (!IsPreDump(directory, inventory))
            {
                return null;
            }
            var pagemaps = new SortedDictionary<int, IReadOnlyList<PagemapEntry>>();
            foreach (var file in System.IO.Directory.EnumerateFiles(directory, "pagemap-*.img"))
            {
                var match = ProcessPagemap().Match(Path.GetFileName(file));
                if (match.Success)
                {
                    var entries = ImageReader.ReadAll(file, ImageTypes.Pagemap).Skip(1).Select(e => (PagemapEntry)e.Message).ToList();
                    pagemaps[int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture)] = entries;
                }
            }
            var statsPath = Path.Combine(directory, ImageTypes.Stats.FileName("dump"));
            var stats = File.Exists(statsPath) ? ImageReader.ReadSingle<StatsEntry>(directory, ImageTypes.Stats, "dump") : null;
            return new PreDumpImages(directory, inventory, stats, pagemaps);
        }
        catch (ImageFormatException e)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, e.Message, e.Path, "The image is damaged; take a new pre-dump.", e);
        }
    }

    [GeneratedRegex(@"^pagemap-(\d+)\.img$")]
    private static partial Regex ProcessPagemap();
}
