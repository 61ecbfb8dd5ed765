using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using Google.Protobuf;

namespace CriuPS.Engine.Images.Digests;

/// <summary>
/// criups-digests.img: the digest of every image file of a directory, written by the checkpoint as it wrote them
/// and before the directory appeared, so that a committed CriuPS image always has a complete one. Left out: the
/// manifest itself, stats-dump (written after the commit, and read only for its timings) and stats-restore, and
/// whatever is not an image file (dump.log, restore.log, the `parent` link, other files a user put there, which no
/// restore reads). Images written by CRIU have none, and are restored unverified.
/// </summary>
internal sealed class DigestManifest
{
    private readonly Dictionary<string, FileDigest> files;

    private DigestManifest(string directory, Dictionary<string, FileDigest> files)
    {
        Directory = directory;
        this.files = files;
    }

    /// <summary>criups-digests.img.</summary>
    public static string FileName { get; } = ImageTypes.CriupsDigests.FileName(null);

    public string Directory { get; }

    public string Path => System.IO.Path.Combine(Directory, FileName);

    /// <summary>Every file listed, by name.</summary>
    public IReadOnlyDictionary<string, FileDigest> Files => files;

    /// <summary>
    /// Whether a file of an image directory belongs in the manifest: an image file by its name (one a restore or
    /// CRIU could read), but for the manifest and the stats files.
    /// </summary>
    public static bool Covers(string fileName) =>
        ImageTypes.Identify(fileName) is { } type && type != ImageTypes.CriupsDigests && type != ImageTypes.Stats;

    /// <summary>The manifest of <paramref name="directory"/>; null when it has none. An unreadable one is ImageCorrupt.</summary>
    public static DigestManifest? Read(string directory)
    {
        var path = System.IO.Path.Combine(directory, FileName);
        if (!File.Exists(path))
        {
            return null;
        }
        try
        {
            var files = new Dictionary<string, FileDigest>(StringComparer.Ordinal);
            using var reader = ImageReader.Open(path, ImageTypes.CriupsDigests);
            while (reader.TryReadEntry<CriupsDigestEntry>(out var entry))
            {
                var digest = FromEntry(entry, path);
                if (!files.TryAdd(digest.Name, digest))
                {
                    throw Corrupt(path, $"{path} lists '{entry.Name}' twice.");
                }
            }
            return new DigestManifest(directory, files);
        }
        catch (ImageFormatException e)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, e.Message, path, ImageDamage.Action, e);
        }
    }

    /// <summary>Writes the entries of <paramref name="files"/>, by name, into a new manifest's stream.</summary>
    public static void Write(Stream stream, string path, IEnumerable<FileDigest> files)
    {
        using var writer = ImageWriter.Create(stream, path, ImageTypes.CriupsDigests);
        foreach (var file in files.OrderBy(f => f.Name, StringComparer.Ordinal))
        {
            writer.WriteEntry(new CriupsDigestEntry
            {
                Name = file.Name,
                Size = (ulong)file.Size,
                BlockSize = (uint)file.BlockBytes,
                Blocks = ByteString.CopyFrom(file.Blocks),
            });
        }
    }

    /// <summary>
    /// Records the file at <paramref name="path"/> as it is now in its directory's manifest, when the directory has
    /// one: what Export-CheckpointImageFile does when it writes into an image, since editing an image with our own
    /// tools is deliberate. The manifest is replaced whole (written beside it, then renamed over it). Returns false
    /// when there is no manifest to update, or the file is not one it covers.
    /// </summary>
    public static bool Reseal(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        var directory = System.IO.Path.GetDirectoryName(full) ?? "/";
        var name = System.IO.Path.GetFileName(full);
        if (!Covers(name) || Read(directory) is not { } manifest)
        {
            return false;
        }
        manifest.files[name] = DigestOf(full, name);
        var temporary = System.IO.Path.Combine(directory, $".{FileName}.{Environment.ProcessId}");
        try
        {
            var stream = new FileStream(temporary, new FileStreamOptions
            {
                Mode = FileMode.Create,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
            Write(stream, manifest.Path, manifest.files.Values);
            File.Move(temporary, manifest.Path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
        return true;
    }

    /// <summary>Digests a whole file as the checkpoint would have while writing it.</summary>
    public static FileDigest DigestOf(string path, string name)
    {
        var digester = new BlockDigester();
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
        var buffer = new byte[BlockDigester.DefaultBlockBytes];
        int n;
        while ((n = file.Read(buffer)) > 0)
        {
            digester.Append(buffer.AsSpan(0, n));
        }
        return digester.Finish(name);
    }

    // An entry whose fields cannot describe a file of the directory is damage too.
    private static FileDigest FromEntry(CriupsDigestEntry entry, string path)
    {
        if (!Covers(entry.Name))
        {
            throw Corrupt(path, $"{path} lists '{entry.Name}', which is no image file of a directory.");
        }
        if (entry.BlockSize > BlockDigester.MaxBlockBytes)
        {
            throw Corrupt(path, $"{path}: the digests of {entry.Name} are of blocks of {entry.BlockSize} bytes, more than the {BlockDigester.MaxBlockBytes >> 20} MiB a block may have.");
        }
        if (entry.BlockSize == 0 || entry.Size > long.MaxValue ||
            entry.Blocks.Length != FileDigest.BlocksOf((long)entry.Size, (int)entry.BlockSize) * FileDigest.DigestBytes)
        {
            throw Corrupt(path, $"{path}: the digests of {entry.Name} do not fit its size ({entry.Size} bytes in blocks of {entry.BlockSize}, {entry.Blocks.Length} bytes of digests).");
        }
        return new FileDigest(entry.Name, (long)entry.Size, (int)entry.BlockSize, entry.Blocks.ToByteArray());
    }

    private static CheckpointException Corrupt(string path, string message) =>
        new(CheckpointErrorKind.ImageCorrupt, message, path, ImageDamage.Action);
}
