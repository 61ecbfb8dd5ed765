using CriuPS.Engine.Images.Proto;

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

    public required IReadOnlyList<FdinfoEntry> FileDescriptors { get; init; }

    public required FsEntry Fs { get; init; }

    public string Name => LeaderCore.Tc?.Comm ?? $"pid {Pid}";
}
