using System.Globalization;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Memory;

namespace CriuPS.Engine.Restore;

/// <summary>The images of one process, read from the image directory.</summary>
internal sealed class ProcessImages
{
    public required PstreeEntry Pstree { get; init; }

    public int Pid => (int)Pstree.Pid;

    /// <summary>core-TID.img of each thread, in pstree order (the leader first).</summary>
    public required IReadOnlyList<(int Tid, CoreEntry Core)> Cores { get; init; }

    public CoreEntry LeaderCore => Cores[0].Core;

    public required TaskKobjIdsEntry Ids { get; init; }

    public required MmEntry Mm { get; init; }

    public required PagemapHead PagemapHead { get; init; }

    public required IReadOnlyList<PagemapEntry> Pagemap { get; init; }

    /// <summary>
    /// Its saved pages, read through the chain of parent images (opened and checked); with a <paramref name="verifier"/>,
    /// each block of them verified when first read.
    /// </summary>
    public PageChain OpenPages(string directory, Images.Digests.PageVerifier? verifier = null) =>
        new(directory, ImageTypes.Pagemap, Pid.ToString(CultureInfo.InvariantCulture), PagemapHead, Pagemap, verifier);

    public required IReadOnlyList<FdinfoEntry> FileDescriptors { get; init; }

    public required FsEntry Fs { get; init; }

    public string Name => LeaderCore.Tc?.Comm ?? $"pid {Pid}";
}
