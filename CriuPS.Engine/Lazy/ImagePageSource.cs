using CriuPS.Engine.Errors;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Restore;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Lazy;

/// <summary>Pages read from the pages files of the image directory being restored (and of its parent images).</summary>
internal sealed class ImagePageSource : ILazyPageSource
{
    private readonly Dictionary<int, PageChain> files = new();

    /// <param name="verifier">Verifies each block of the pages files when first read (null: verified up front, or no digests).</param>
    public ImagePageSource(ImageSet images, Images.Digests.PageVerifier? verifier)
    {
        Description = $"the image directory {images.Directory}";
        try
        {
            foreach (var process in images.Processes)
            {
                files[process.Pid] = process.OpenPages(images.Directory, verifier);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Description { get; }

    public void Read(int pid, Address address, Span<byte> destination)
    {
        var data = files.TryGetValue(pid, out var file) ? file.Read(address, destination.Length) : null;
        if (data is null)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt, $"The pages image of process {pid} has no {destination.Length} bytes at {address}.", pid);
        }
        data.CopyTo(destination);
    }

    public void Complete(PageCount pages)
    {
    }

    public void Interrupt()
    {
    }

    public void Dispose()
    {
        foreach (var file in files.Values)
        {
            file.Dispose();
        }
        files.Clear();
    }
}
