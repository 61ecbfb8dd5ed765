using System.Globalization;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Resources.Ipc;

/// <summary>
/// The System V objects an image holds, read and checked before anything is made from them: a value no kernel object
/// can have, or an attachment that names no saved segment, is ImageCorrupt naming the file.
/// </summary>
internal sealed class SavedObjects
{
    // Beyond the permission bits, a segment's mode may say that it was marked for removal or locked in memory.
    private const uint KnownModeBits = SysvIpc.PermissionBits | SysvIpc.ShmDest | SysvIpc.ShmLocked;

    public bool Own { get; private init; }

    public IpcVarEntry? Sysctls { get; private init; }

    public List<(IpcShmEntry Entry, byte[] Contents)> Segments { get; } = new();

    public List<(IpcSemEntry Set, byte[] Values)> Semaphores { get; } = new();

    public List<(IpcMsgEntry Queue, List<(IpcMsg Message, byte[] Text)> Messages)> Queues { get; } = new();

    public static SavedObjects Read(ImageSet images)
    {
        string id = images.Root.Ids.IpcNsId.ToString(CultureInfo.InvariantCulture);
        bool own = IpcNamespace.OwnNamespace(images);
        var saved = new SavedObjects { Own = own, Sysctls = own ? ReadSysctls(images, id) : null };
        string shmFile = FileOf(images, ImageTypes.IpcnsShm, id);
        foreach (var entry in images.Entries(ImageTypes.IpcnsShm, id))
        {
            var segment = (IpcShmEntry)entry.Message;
            CheckDesc(shmFile, segment.Desc, segment.InPagemaps ? "in_pagemaps is set, and CriuPS saves contents in this image"
                : segment.HasHugetlbFlag ? HugetlbMemory.FlagsProblem(segment.HugetlbFlag, SysvIpc.ShmHugetlb, "SHM_HUGETLB") : null);
            saved.Segments.Add((segment, entry.Payload!));
        }
        string semFile = FileOf(images, ImageTypes.IpcnsSem, id);
        foreach (var entry in images.Entries(ImageTypes.IpcnsSem, id))
        {
            var set = (IpcSemEntry)entry.Message;
            CheckDesc(semFile, set.Desc, set.Nsems == 0 ? "a set has at least one semaphore" : null);
            saved.Semaphores.Add((set, entry.Payload!));
        }
        string msgFile = FileOf(images, ImageTypes.IpcnsMsg, id);
        foreach (var entry in images.Entries(ImageTypes.IpcnsMsg, id))
        {
            if (entry.Message is IpcMsgEntry queue)
            {
                CheckDesc(msgFile, queue.Desc, null);
                saved.Queues.Add((queue, new()));
            }
            else
            {
                var message = (IpcMsg)entry.Message;
                if (message.Mtype == 0 || message.Mtype > long.MaxValue)
                {
                    throw ImageDamage.In(msgFile, $"a message of queue {saved.Queues[^1].Queue.Desc.Id} has type {message.Mtype}; a message's type is positive.");
                }
                saved.Queues[^1].Messages.Add((message, entry.Payload!));
            }
        }
        CheckAttachments(images, saved, shmFile);
        return saved;
    }

    private static IpcVarEntry ReadSysctls(ImageSet images, string id)
    {
        var entries = images.Entries(ImageTypes.IpcnsVar, id);
        return entries.Count == 1 ? (IpcVarEntry)entries[0].Message : throw ImageDamage.In(FileOf(images, ImageTypes.IpcnsVar, id),
            $"the root's IPC namespace ({id}) is not the dumping tool's, and this image should hold its sysctls in one entry; it holds {entries.Count}.");
    }

    // Every attachment names a saved segment, and covers it whole.
    private static void CheckAttachments(ImageSet images, SavedObjects saved, string shmFile)
    {
        var sizes = saved.Segments.GroupBy(s => s.Entry.Desc.Id).ToDictionary(g => g.Key, g => HugetlbMemory.MappedLength(g.First().Entry.Size, g.First().Entry.HugetlbFlag));
        foreach (var process in images.Processes)
        {
            foreach (var area in process.Mm.Vmas.Where(SysvAttachments.IsAttachment))
            {
                if (area.Shmid > int.MaxValue || !sizes.TryGetValue((uint)area.Shmid, out var size))
                {
                    throw ImageDamage.In(shmFile, $"process {process.Pid} attaches System V shared memory segment {area.Shmid} at {area.Start:x}-{area.End:x}, which this image does not hold.");
                }
                if (size != area.End - area.Start)
                {
                    throw ImageDamage.In(shmFile, $"System V shared memory segment {area.Shmid} takes {size} bytes mapped whole, and process {process.Pid} attaches {area.End - area.Start} bytes of it at {area.Start:x}.");
                }
            }
        }
    }

    private static void CheckDesc(string file, IpcDescEntry desc, string? problem)
    {
        if (desc.Id > int.MaxValue)
        {
            problem = $"id {desc.Id} is negative as the kernel's int";
        }
        else if ((desc.Mode & ~KnownModeBits) != 0)
        {
            problem = $"mode {Convert.ToString(desc.Mode, 8)} has bits no System V object has";
        }
        if (problem is not null)
        {
            throw ImageDamage.In(file, $"object {desc.Id} (key 0x{desc.Key:x8}): {problem}.");
        }
    }

    private static string FileOf(ImageSet images, ImageType type, string id) => Path.Combine(images.Directory, type.FileName(id));
}
