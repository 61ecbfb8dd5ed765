using CriuPS.Engine.Images.Digests;

namespace CriuPS.Engine.Model;

/// <summary>
/// Whether a checkpoint image is as its checkpoint wrote it (Test-CheckpointImage): every image file of its directory,
/// and of the parent images its pages are read through, against the digests recorded in their criups-digests.img.
/// </summary>
public sealed class ImageIntegrity
{
    /// <summary>The image directory.</summary>
    public required string Path { get; init; }

    /// <summary>
    /// True when every directory checked had its digests and every file matched them: the image is as written.
    /// False when something is damaged, missing or added, or when a directory has no digests to check against.
    /// </summary>
    public bool Intact => Problems.Count == 0 && Unverified.Count == 0;

    /// <summary>Whether the image directory has criups-digests.img (CriuPS writes it; CRIU does not).</summary>
    public required bool HasDigests { get; init; }

    /// <summary>What is wrong, file by file: damaged, truncated, grown, missing, or an image file the checkpoint did not write.</summary>
    public required IReadOnlyList<ImageFileProblem> Problems { get; init; }

    /// <summary>Directories checked without digests (an image written by CRIU, or whose criups-digests.img was removed).</summary>
    public required IReadOnlyList<string> Unverified { get; init; }

    /// <summary>The image directory and its parent images, each checked.</summary>
    public required IReadOnlyList<string> Directories { get; init; }

    /// <summary>Image files read and compared with their digests.</summary>
    public required int FileCount { get; init; }

    /// <summary>Bytes read and compared.</summary>
    public required long Bytes { get; init; }

    /// <summary>How long the check took.</summary>
    public required TimeSpan Elapsed { get; init; }

    /// <summary>Checks the image at <paramref name="path"/> and its parents (all of every file: this reads the whole image).</summary>
    public static ImageIntegrity Check(string path)
    {
        var directory = System.IO.Path.GetFullPath(path);
        // An image that lost its inventory.img still has its digests, which say so.
        if (!System.IO.File.Exists(System.IO.Path.Combine(directory, Images.ImageTypes.Inventory.FileName(null)))
            && !System.IO.File.Exists(System.IO.Path.Combine(directory, DigestManifest.FileName)))
        {
            throw new Errors.CheckpointException(Errors.CheckpointErrorKind.ImageNotFound,
                $"'{directory}' is not a checkpoint image: it has no inventory.img.", directory);
        }
        return ImageVerifier.VerifyChain(directory, deferPages: false).ToModel();
    }

    /// <summary>
    /// Records the digest of an image file just written on purpose into an image that has digests
    /// (Export-CheckpointImageFile), so that the edited image restores: editing an image with CriuPS's own tools is
    /// deliberate, damage is not. Returns false when the directory has no digests, or the file is not an image file.
    /// </summary>
    public static bool RecordDigest(string filePath) => DigestManifest.Reseal(filePath);

    public override string ToString() => Path;
}
