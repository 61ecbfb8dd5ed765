using System.Runtime.InteropServices;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Resources.Ipc;

/// <summary>
/// System V objects in CRIU's images, each object once: ipcns-shm-ID.img (a segment's description and its contents,
/// in_pagemaps unset: the bytes follow the entry), ipcns-sem-ID.img (a set and its values), ipcns-msg-ID.img (a queue,
/// then each queued message in order with its type and text). Both ways work in the IPC namespace of the calling
/// thread: at dump the objects are read, never changed (messages are copied with MSG_COPY, not received); at restore
/// each is made again at its saved id (kernel/*_next_id), by a thread whose effective ids are the saved creator's, so
/// that cuid/cgid come back too (CRIU leaves them the restorer's), then given its owner and mode (IPC_SET) and contents.
/// </summary>
internal static class SysvObjectImages
{
    /// <summary>Saves these segments with their contents (read through a read-only attachment of the engine's).</summary>
    public static void SaveSegments(DumpSession session, string image, IEnumerable<SysvObject> segments)
    {
        foreach (var segment in segments)
        {
            var contents = new byte[Padded(segment.Size, sizeof(uint))];
            var entry = new IpcShmEntry { Desc = Describe(segment), Size = segment.Size, InPagemaps = false };
            ulong address = SysvIpc.Attach(segment.Id, readOnly: true);
            try
            {
                Marshal.Copy((nint)address, contents, 0, checked((int)segment.Size));
                // A segment made with SHM_HUGETLB lives on hugetlbfs (as CRIU, hugetlb_flag says so, with the page size).
                if (HugetlbMemory.PageSizeOfAttachment(address) is { } pageSize)
                {
                    entry.HugetlbFlag = SysvIpc.ShmHugetlb | HugePages.SizeFlag(pageSize);
                }
            }
            finally
            {
                SysvIpc.Detach(address);
            }
            session.AddImageEntry(ImageTypes.IpcnsShm, image, entry, contents);
            session.Log.Detail($"{segment}: {segment.Size} bytes, mode {Convert.ToString(segment.Mode, 8)}, {segment.Count} attachment(s)");
        }
    }

    /// <summary>Saves these semaphore sets with their values.</summary>
    public static void SaveSemaphores(DumpSession session, string image, IEnumerable<SysvObject> sets)
    {
        foreach (var set in sets)
        {
            var values = SysvIpc.Values(set.Id, (int)set.Count);
            var payload = new byte[Padded(set.Count * sizeof(ushort), sizeof(ulong))];
            MemoryMarshal.AsBytes(values.AsSpan()).CopyTo(payload);
            session.AddImageEntry(ImageTypes.IpcnsSem, image, new IpcSemEntry { Desc = Describe(set), Nsems = (uint)set.Count }, payload);
            session.Log.Detail($"{set}: values {string.Join(' ', values)}");
        }
    }

    /// <summary>Saves these message queues with copies of their messages (none longer than the queue's byte limit or kernel/msgmax).</summary>
    public static void SaveQueues(DumpSession session, string image, IEnumerable<SysvObject> queues, int largestMessage)
    {
        foreach (var queue in queues)
        {
            session.AddImageEntry(ImageTypes.IpcnsMsg, image, new IpcMsgEntry { Desc = Describe(queue), Qbytes = (uint)queue.QueueBytes, Qnum = (uint)queue.Count });
            for (int index = 0; index < (int)queue.Count; index++)
            {
                var (type, text) = SysvIpc.CopyMessage(queue.Id, index, Math.Max(largestMessage, (int)Math.Min(queue.QueueBytes, int.MaxValue - sizeof(long))));
                var payload = new byte[Padded((ulong)text.Length, sizeof(ulong))];
                text.CopyTo(payload, 0);
                session.AddImageEntry(ImageTypes.IpcnsMsg, image, new IpcMsg { Mtype = (ulong)type, Msize = (uint)text.Length }, payload);
            }
            session.Log.Detail($"{queue}: {queue.Count} message(s)");
        }
    }

    /// <summary>Makes a saved segment again at its id with its contents; returns its id.</summary>
    public static int MakeSegment(IpcShmEntry saved, byte[] contents)
    {
        int id = MakeAt(SysvKind.SharedMemory, saved.Desc, saved.Size, hugetlbFlags: saved.HugetlbFlag);
        ulong address = SysvIpc.Attach(id, readOnly: false);
        try
        {
            Marshal.Copy(contents, 0, (nint)address, checked((int)saved.Size));
        }
        finally
        {
            SysvIpc.Detach(address);
        }
        return id;
    }

    /// <summary>Makes a saved semaphore set again at its id with its values.</summary>
    public static void MakeSemaphores(IpcSemEntry saved, byte[] values)
    {
        int id = MakeAt(SysvKind.Semaphores, saved.Desc, saved.Nsems);
        SysvIpc.SetValues(id, MemoryMarshal.Cast<byte, ushort>(values.AsSpan(0, (int)saved.Nsems * sizeof(ushort))).ToArray());
    }

    /// <summary>Makes a saved queue again at its id, with its byte limit, then queues its messages in their order.</summary>
    public static void MakeQueue(IpcMsgEntry saved, IEnumerable<(IpcMsg Message, byte[] Text)> messages)
    {
        int id = MakeAt(SysvKind.MessageQueue, saved.Desc, 0, saved.Qbytes);
        foreach (var (message, text) in messages)
        {
            SysvIpc.Send(id, (long)message.Mtype, text.AsSpan(0, (int)message.Msize));
        }
    }

    private static int MakeAt(SysvKind kind, IpcDescEntry desc, ulong sizeOrCount, ulong? queueBytes = null, uint hugetlbFlags = 0)
    {
        IpcSysctls.SetNextId(kind, (int)desc.Id);
        int id;
        using (ThreadIdentity.Become(desc.Cuid, desc.Cgid))
        {
            id = SysvIpc.Create(kind, (int)desc.Key, sizeOrCount, desc.Mode, hugetlbFlags);
        }
        if (id != (int)desc.Id)
        {
            SysvIpc.Remove(kind, id);
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed,
                $"The {SysvIpc.Describe(kind, (int)desc.Id, (int)desc.Key)} was made again with id {id}: another object took its id meanwhile.");
        }
        var made = SysvIpc.Stat(kind, id)!;
        SysvIpc.SetOwnership(kind, id, desc.Uid, desc.Gid, desc.Mode, queueBytes is { } bytes && bytes != made.QueueBytes ? bytes : null);
        return id;
    }

    private static IpcDescEntry Describe(SysvObject o) => new()
    {
        Key = (uint)o.Key, Uid = o.Uid, Gid = o.Gid, Cuid = o.Cuid, Cgid = o.Cgid, Mode = o.Mode, Id = (uint)o.Id,
    };

    private static ulong Padded(ulong size, int alignment) => (size + (ulong)alignment - 1) & ~((ulong)alignment - 1);
}
