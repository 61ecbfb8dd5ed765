using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Model;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Native.Interop;
using Microsoft.Win32.SafeHandles;

namespace CriuPS.Engine.Images.Digests;

/// <summary>
/// Checks image directories against their criups-digests.img: every listed file present with its size and, block by
/// block on every core, its digests; no image file the checkpoint did not write. A directory without a manifest (CRIU's
/// images) is reported unverified, not damaged.
/// </summary>
internal static class ImageVerifier
{
    /// <summary>
    /// Verifies the image directory and every parent image its `parent` links lead to (a restore may read pages from
    /// any of them). <paramref name="deferPages"/>: the pages files are checked for their size only, for a lazy
    /// restore that verifies each of their blocks as it first reads it (<see cref="PageVerifier"/>).
    /// </summary>
    public static ChainVerification VerifyChain(string path, bool deferPages)
    {
        var clock = Stopwatch.StartNew();
        var top = Path.GetFullPath(path);
        // As far as the chain exists: a missing parent is the restore's to report (ImageNotFound), when it needs it.
        // Each directory is checked before its `parent` link is read, which a directory this session may not read hides.
        var directories = PageChain.Directories(top).TakeWhile(Directory.Exists)
            .Select(d => Verify(Readable(d, d == top ? "the image directory" : "the parent image"), deferPages)).ToList();
        return new ChainVerification(top, directories, clock.Elapsed);
    }

    private static string Readable(string directory, string what)
    {
        PathAccess.Demand(directory, what, Faccessat.Read | Faccessat.Search);
        return directory;
    }

    /// <summary>Verifies one directory.</summary>
    public static DirectoryVerification Verify(string directory, bool deferPages)
    {
        DigestManifest? manifest;
        try
        {
            manifest = DigestManifest.Read(directory);
        }
        catch (CheckpointException e) when (e.Kind == CheckpointErrorKind.ImageCorrupt)
        {
            return new DirectoryVerification(directory, null, [new ImageFileProblem(Path.Combine(directory, DigestManifest.FileName), e.Message)], 0, 0);
        }
        if (manifest is null)
        {
            return new DirectoryVerification(directory, null, [], 0, 0);
        }
        var problems = new ConcurrentBag<ImageFileProblem>();
        var toCheck = new List<(FileDigest Digest, SafeFileHandle File)>();
        var handles = new List<SafeFileHandle>();
        int files = 0;
        long bytes = 0;
        try
        {
            foreach (var digest in manifest.Files.Values)
            {
                var path = Path.Combine(directory, digest.Name);
                SafeFileHandle file;
                try
                {
                    file = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
                }
                catch (FileNotFoundException)
                {
                    problems.Add(new ImageFileProblem(path, $"missing: the checkpoint wrote it ({digest.Size} bytes)"));
                    continue;
                }
                handles.Add(file);
                long size = RandomAccess.GetLength(file);
                if (size != digest.Size)
                {
                    problems.Add(new ImageFileProblem(path, digest.SizeProblem(size)));
                    continue;
                }
                if (deferPages && ImageTypes.Pages.MatchesFileName(digest.Name))
                {
                    continue;
                }
                files++;
                bytes += size;
                toCheck.Add((digest, file));
            }
            foreach (var name in Directory.EnumerateFiles(directory).Select(f => Path.GetFileName(f)!))
            {
                if (DigestManifest.Covers(name) && !manifest.Files.ContainsKey(name))
                {
                    problems.Add(new ImageFileProblem(Path.Combine(directory, name), $"not written by the checkpoint: {DigestManifest.FileName} does not list it"));
                }
            }
            foreach (var problem in DamagedBlocks(directory, toCheck, Environment.ProcessorCount))
            {
                problems.Add(problem);
            }
        }
        finally
        {
            foreach (var handle in handles)
            {
                handle.Dispose();
            }
        }
        return new DirectoryVerification(directory, manifest, InPathOrder(problems), files, bytes);
    }

    /// <summary>
    /// The pages files that <paramref name="sizesChecked"/> (a chain verified with deferPages) checked for their size
    /// only, verified block by block now: for a restore that checks them beside its own work, on every core but one
    /// (the restore's injected calls take the other). Returns the chain with their files, bytes and problems added.
    /// </summary>
    public static ChainVerification VerifyDeferredPages(ChainVerification sizesChecked)
    {
        var clock = Stopwatch.StartNew();
        var directories = sizesChecked.Directories.Select(VerifyDeferredPages).ToList();
        return sizesChecked with { Directories = directories, Elapsed = sizesChecked.Elapsed + clock.Elapsed };
    }

    private static DirectoryVerification VerifyDeferredPages(DirectoryVerification sizesChecked)
    {
        if (sizesChecked.Manifest is not { } manifest)
        {
            return sizesChecked;
        }
        var toCheck = new List<(FileDigest Digest, SafeFileHandle File)>();
        try
        {
            foreach (var digest in manifest.Files.Values.Where(d => ImageTypes.Pages.MatchesFileName(d.Name)))
            {
                var path = Path.Combine(sizesChecked.Directory, digest.Name);
                if (sizesChecked.Problems.Any(p => p.Path == path))
                {
                    continue; // missing or of another size: already said
                }
                toCheck.Add((digest, File.OpenHandle(path, FileMode.Open, FileAccess.Read)));
            }
            return sizesChecked with
            {
                Problems = InPathOrder(sizesChecked.Problems.Concat(DamagedBlocks(sizesChecked.Directory, toCheck, Math.Max(1, Environment.ProcessorCount - 1)))),
                Files = sizesChecked.Files + toCheck.Count,
                Bytes = sizesChecked.Bytes + toCheck.Sum(f => f.Digest.Size),
            };
        }
        finally
        {
            foreach (var (_, file) in toCheck)
            {
                file.Dispose();
            }
        }
    }

    /// <summary>Whether block <paramref name="index"/> of an open file holds what its digest says.</summary>
    public static bool BlockMatches(SafeFileHandle file, FileDigest digest, int index, byte[] buffer)
    {
        var (offset, length) = digest.BlockRange(index);
        var block = buffer.AsSpan(0, length);
        int read = 0;
        while (read < length)
        {
            int n = RandomAccess.Read(file, block[read..], offset + read);
            if (n == 0)
            {
                return false; // shorter than when its size was checked
            }
            read += n;
        }
        Span<byte> actual = stackalloc byte[FileDigest.DigestBytes];
        BlockDigester.Digest(block, actual);
        return actual.SequenceEqual(digest.Block(index));
    }

    private static List<ImageFileProblem> InPathOrder(IEnumerable<ImageFileProblem> problems) =>
        problems.OrderBy(p => p.Path, StringComparer.Ordinal).ToList();

    // The first damaged block of each open file of `directory`, as the problem it is, checked on `cores` cores.
    private static List<ImageFileProblem> DamagedBlocks(string directory, List<(FileDigest Digest, SafeFileHandle File)> files, int cores)
    {
        var blocks = files.SelectMany(f => Enumerable.Range(0, f.Digest.BlockCount).Select(i => (f.Digest, f.File, i))).ToList();
        return FirstDamagedBlocks(blocks, cores)
            .Select(d => new ImageFileProblem(Path.Combine(directory, d.Digest.Name), d.Digest.BlockProblem(d.Block))).ToList();
    }

    // Every block on whichever core is free (the check reads as fast as the machine reads and hashes); the first
    // damaged block of each file, if any.
    private static IEnumerable<(FileDigest Digest, int Block)> FirstDamagedBlocks(List<(FileDigest Digest, SafeFileHandle File, int Block)> blocks, int cores)
    {
        var damaged = new ConcurrentDictionary<FileDigest, int>();
        Parallel.ForEach(blocks, new ParallelOptions { MaxDegreeOfParallelism = cores }, item =>
        {
            // As large as this block, not as any block may be: most image files are a few KiB, and a 1 MiB buffer for
            // each thread that checked them was 3 MiB to allocate and clear in a restore of 64 threads (77 files).
            var buffer = ArrayPool<byte>.Shared.Rent(item.Digest.BlockRange(item.Block).Length);
            try
            {
                if (!BlockMatches(item.File, item.Digest, item.Block, buffer))
                {
                    damaged.AddOrUpdate(item.Digest, item.Block, (_, other) => Math.Min(other, item.Block));
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        });
        return damaged.Select(d => (d.Key, d.Value));
    }
}

/// <summary>What the check of one directory found; <see cref="Manifest"/> is null when it has none (or an unreadable one).</summary>
internal sealed record DirectoryVerification(string Directory, DigestManifest? Manifest, IReadOnlyList<ImageFileProblem> Problems, int Files, long Bytes);

/// <summary>What the check of an image and its parents found.</summary>
internal sealed record ChainVerification(string Path, IReadOnlyList<DirectoryVerification> Directories, TimeSpan Elapsed)
{
    public IEnumerable<ImageFileProblem> Problems => Directories.SelectMany(d => d.Problems);

    /// <summary>Directories without a manifest (and without an unreadable one, which is a problem).</summary>
    public IEnumerable<string> Unverified => Directories.Where(d => d.Manifest is null && d.Problems.Count == 0).Select(d => d.Directory);

    public ImageIntegrity ToModel() => new()
    {
        Path = Path,
        HasDigests = Directories.Count > 0 && System.IO.File.Exists(System.IO.Path.Combine(Directories[0].Directory, DigestManifest.FileName)),
        Problems = Problems.ToList(),
        Unverified = Unverified.ToList(),
        Directories = Directories.Select(d => d.Directory).ToList(),
        FileCount = Directories.Sum(d => d.Files),
        Bytes = Directories.Sum(d => d.Bytes),
        Elapsed = Elapsed,
    };

    /// <summary>
    /// For a restore: refuses the image, naming the first damaged file and the problem (and how many more there are),
    /// when anything is not as written.
    /// </summary>
    public void ThrowIfDamaged()
    {
        var problems = Problems.ToList();
        if (problems.Count > 0)
        {
            var first = problems[0];
            var more = problems.Count > 1 ? $" ({problems.Count - 1} more: {string.Join("; ", problems.Skip(1).Take(5))}{(problems.Count > 6 ? "; ..." : "")})" : "";
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                $"The image in '{Path}' is not as its checkpoint wrote it: {first}{more}. Nothing was restored.", first.Path,
                "Restore a copy of the image that is intact (Test-CheckpointImage tells), or take a new checkpoint. To restore an image edited on purpose, write the edits with Export-CheckpointImageFile (which records their digests), or remove criups-digests.img to restore it unverified.");
        }
    }
}
