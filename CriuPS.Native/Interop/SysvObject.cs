namespace CriuPS.Native.Interop;

/// <summary>
/// What the kernel says of one System V IPC object (struct ipc64_perm and the kind's own counts), as IPC_STAT or
/// *_STAT_ANY fill it in. <paramref name="Size"/>: a segment's bytes; <paramref name="Count"/>: a segment's
/// attachments, a set's semaphores, a queue's messages; <paramref name="QueueBytes"/>: a queue's msg_qbytes.
/// </summary>
public sealed record SysvObject(SysvKind Kind, int Id, int Key, uint Uid, uint Gid, uint Cuid, uint Cgid, uint Mode, ulong Size, ulong Count, ulong QueueBytes)
{
    public override string ToString() => SysvIpc.Describe(Kind, Id, Key);
}
