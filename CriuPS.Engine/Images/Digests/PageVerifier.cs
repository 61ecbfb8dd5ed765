using System.Buffers;
using CriuPS.Engine.Errors;
using Microsoft.Win32.SafeHandles;

namespace CriuPS.Engine.Images.Digests;

/// <summary>
/// The pages files of an image and its parents whose blocks are verified when first read rather than up front: a
/// lazy restore's (its process runs before its pages are in) and a page server's. Each block is read whole and
/// compared with its digest once; a damaged one fails the read as ImageCorrupt naming the file.
/// </summary>
internal sealed class PageVerifier
{
    private readonly Dictionary<string, VerifiedPagesFile> files;

    private PageVerifier(Dictionary<string, VerifiedPagesFile> files) => this.files = files;

    /// <summary>The pages files listed by the manifests of <paramref name="verified"/>' directories.</summary>
    public static PageVerifier For(ChainVerification verified) => new(
        verified.Directories
            .Where(d => d.Manifest is not null)
            .SelectMany(d => d.Manifest!.Files.Values.Where(f => ImageTypes.Pages.MatchesFileName(f.Name)).Select(f => (Path: Path.Combine(d.Directory, f.Name), Digest: f)))
            .ToDictionary(f => f.Path, f => new VerifiedPagesFile(f.Path, f.Digest), StringComparer.Ordinal));

    /// <summary>
    /// For a page server about to serve the image at <paramref name="imagePath"/>: everything but the pages of the
    /// image and its parents is verified now (a damaged image is refused before a page is sent), the pages as they
    /// are read.
    /// </summary>
    public static PageVerifier ForServing(string imagePath)
    {
        var verified = ImageVerifier.VerifyChain(imagePath, deferPages: true);
        verified.ThrowIfDamaged();
        return For(verified);
    }

    /// <summary>The file at <paramref name="pagesPath"/> as verified on read; null when no manifest lists it (nothing to verify).</summary>
    public VerifiedPagesFile? Find(string pagesPath) => files.GetValueOrDefault(Path.GetFullPath(pagesPath));
}

/// <summary>One pages file whose blocks are verified as they are first read.</summary>
internal sealed class VerifiedPagesFile
{
    private readonly string path;
    private readonly FileDigest digest;
    private readonly bool[] verified;

    public VerifiedPagesFile(string path, FileDigest digest)
    {
        this.path = path;
        this.digest = digest;
        verified = new bool[digest.BlockCount];
    }

    /// <summary>Makes sure the blocks that hold [<paramref name="offset"/>, +<paramref name="length"/>) are intact.</summary>
    public void Verify(SafeFileHandle file, long offset, long length)
    {
        if (length <= 0)
        {
            return;
        }
        int first = (int)(offset / digest.BlockBytes);
        int last = (int)Math.Min((offset + length - 1) / digest.BlockBytes, digest.BlockCount - 1);
        for (int block = first; block <= last; block++)
        {
            if (Volatile.Read(ref verified[block]))
            {
                continue;
            }
            // One reader per file at a time: a block two faults want is read and hashed once.
            lock (verified)
            {
                if (verified[block])
                {
                    continue;
                }
                var buffer = ArrayPool<byte>.Shared.Rent(digest.BlockBytes);
                try
                {
                    if (!ImageVerifier.BlockMatches(file, digest, block, buffer))
                    {
                        throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                            $"{path} is not as its checkpoint wrote it: {digest.BlockProblem(block)}.", path,
                            "Restore a copy of the image that is intact (Test-CheckpointImage tells), or take a new checkpoint.");
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
                Volatile.Write(ref verified[block], true);
            }
        }
    }
}
