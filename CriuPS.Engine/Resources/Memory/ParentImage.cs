using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Privileges;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// The image an incremental dump builds on (-ParentImage): checked before anything is frozen, linked from the new
/// image as CRIU links it (a relative `parent` symlink), and read, process by process, for the pages its chain holds.
/// </summary>
internal sealed class ParentImage
{
    // For an image sent to a page server: the pages its chain holds, per process, as they were sent (the image is
    // on the other machine, and its server links the next image to it).
    private readonly IReadOnlyDictionary<int, IReadOnlyList<AddressRange>>? sentHoldings;

    private ParentImage(string directory, string? runId, IReadOnlyDictionary<int, IReadOnlyList<AddressRange>>? sentHoldings = null)
    {
        Directory = directory;
        RunId = runId;
        this.sentHoldings = sentHoldings;
    }

    /// <summary>An image sent to a page server: <paramref name="directory"/> is its path there, <paramref name="holdings"/> what its chain holds.</summary>
    public static ParentImage Sent(string directory, string runId, IReadOnlyDictionary<int, IReadOnlyList<AddressRange>> holdings) =>
        new(directory, runId, holdings);

    public string Directory { get; }

    /// <summary>The dump's run id from its inventory: what write tracking remembers the image by.</summary>
    public string? RunId { get; }

    /// <summary>Checks that <paramref name="path"/> is an image the new image at <paramref name="imagePath"/> can build on.</summary>
    public static ParentImage Open(string path, string imagePath)
    {
        var directory = Path.GetFullPath(path);
        PathAccess.Demand(directory, "the parent image", Faccessat.Read | Faccessat.Search);
        if (!System.IO.Directory.Exists(directory))
        {
            throw new CheckpointException(CheckpointErrorKind.ImageNotFound, $"There is no parent image at '{directory}'.", directory,
                "Name an image directory written by an earlier Checkpoint-Process -PreDump.");
        }
        var inventoryPath = Path.Combine(directory, ImageTypes.Inventory.FileName(null));
        if (!File.Exists(inventoryPath))
        {
            throw new CheckpointException(CheckpointErrorKind.ImageNotFound, $"The parent '{directory}' is not a checkpoint image: it has no inventory.img.", directory);
        }
        var image = Path.GetFullPath(imagePath);
        // The new image may not take the place of an image of its own chain: it would end up its own ancestor.
        foreach (var ancestor in PageChain.Directories(directory))
        {
            if (SameDirectory(ancestor, image))
            {
                throw new CheckpointException(CheckpointErrorKind.ImagePathUnusable,
                    $"The image path '{image}' is '{ancestor}', an image the parent '{directory}' builds on; the new image must go elsewhere.", image,
                    "Choose a new image path.");
            }
        }
        try
        {
            var inventory = ImageReader.ReadSingle<InventoryEntry>(directory, ImageTypes.Inventory, null);
            return new ParentImage(directory, inventory.HasDumpCriuRunId ? inventory.DumpCriuRunId : null);
        }
        catch (ImageFormatException e)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, e.Message, e.Path, "The parent image is damaged; take a new pre-dump.", e);
        }
    }

    /// <summary>Whether the parent holds memory of process <paramref name="pid"/> (its pagemap).</summary>
    public bool HasProcess(int pid) => sentHoldings?.ContainsKey(pid) ?? File.Exists(Path.Combine(Directory, ImageTypes.Pagemap.FileName(pid.ToString(System.Globalization.CultureInfo.InvariantCulture))));

    /// <summary>
    /// The pages of process <paramref name="pid"/> the parent chain holds, in address order; none when the parent
    /// has no pagemap of that process. The whole chain is read and checked, so a broken one is reported now, naming
    /// the file, rather than at restore.
    /// </summary>
    public IReadOnlyList<AddressRange> Holds(int pid)
    {
        if (!HasProcess(pid))
        {
            return [];
        }
        if (sentHoldings is not null)
        {
            return sentHoldings[pid];
        }
        using var chain = PageChain.Open(Directory, ImageTypes.Pagemap, pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return chain.Runs.Select(r => r.Range).ToList();
    }

    /// <summary>Creates the `parent` link of the image being written in <paramref name="workDirectory"/>, relative to <paramref name="finalDirectory"/>, as CRIU writes it.</summary>
    public void Link(string workDirectory, string finalDirectory) =>
        File.CreateSymbolicLink(Path.Combine(workDirectory, PageChain.ParentLink), Path.GetRelativePath(finalDirectory, Directory));

    private static bool SameDirectory(string a, string b)
    {
        if (!System.IO.Directory.Exists(a) || !System.IO.Directory.Exists(b))
        {
            return string.Equals(Path.TrimEndingDirectorySeparator(a), Path.TrimEndingDirectorySeparator(b), StringComparison.Ordinal);
        }
        var x = FileStatus.Of(a);
        var y = FileStatus.Of(b);
        return x.Device == y.Device && x.Inode == y.Inode;
    }
}
