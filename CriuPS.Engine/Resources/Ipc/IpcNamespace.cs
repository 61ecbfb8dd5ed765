using CriuPS.Native.RemoteSyscall;
using System.Globalization;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Resources.Process;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;
using Tmds.Linux;

namespace CriuPS.Engine.Resources.Ipc;

/// <summary>
/// The System V IPC of a tree. A tree in an IPC namespace of its own (unshare -i, a container's) has the whole
/// namespace saved as CRIU saves it: its sysctls (ipcns-var), every segment with its contents, every semaphore set
/// with its values, every queue with its messages, each object with its id, key, owner, creator and mode; root_ids
/// names the dumping engine's IPC namespace, so that CRIU, seeing the root's differ, makes the namespace from the
/// images too. As with CRIU, one such namespace, the root's, for the whole tree. At restore the root unshares a new
/// IPC namespace, the others join it, and the objects are made again in it before memory is restored, so that each
/// process attaches its segments again at their addresses (SysvAttachments).
/// A tree in the engine's (the host's) IPC namespace shares it with everything else on the machine: the segments the
/// tree has attached are saved (with root_ids equal to the root's, which CRIU reads as "nothing to make"), and the
/// objects the user names by key (-IpcKey): semaphore sets and message queues leave no trace of who uses them (no
/// mapping, no descriptor). At restore each is used again if it still exists as saved, made again at its id if it is
/// gone, and refused (ImageIncompatible) when another object has its id or key (HostObjects).
/// Why the objects are read and made by an engine thread that enters the namespace (setns) rather than by system calls
/// injected into the root: the work is many calls (one per message, per object, per sysctl), each 26 µs injected and
/// well under one natively; contents and messages pass through the engine's memory without being copied through the
/// root's scratch page; the frozen root runs nothing of ours at dump; and the host namespace takes the same code
/// without any setns. Only the namespace itself is made by the root (unshare), as the processes must live in it.
/// </summary>
internal static class IpcNamespace
{
    private const string Link = "ipc";

    /// <summary>
    /// At dump, once every process's areas are recorded: the root's own namespace whole, or in the host namespace the
    /// segments the tree has attached.
    /// </summary>
    public static void Dump(DumpSession session)
    {
        var root = session.Processes[0];
        string image = root.Ids.IpcNsId.ToString(CultureInfo.InvariantCulture);
        if (ProcessNamespaces.IsEngines(root.Pid, Link))
        {
            var attached = SysvAttachments.Of(session).Select(a => (int)a.Area.Shmid).Distinct()
                .Select(id => SysvIpc.Stat(SysvKind.SharedMemory, id)).OfType<SysvObject>().ToDictionary(s => s.Id);
            SysvAttachments.Check(session, attached);
            var named = NamedObjects(session);
            var segments = attached.Values.Concat(named[SysvKind.SharedMemory]).DistinctBy(s => s.Id).OrderBy(s => s.Id);
            SysvObjectImages.SaveSegments(session, image, segments);
            SysvObjectImages.SaveSemaphores(session, image, named[SysvKind.Semaphores]);
            SysvObjectImages.SaveQueues(session, image, named[SysvKind.MessageQueue], (int)IpcSysctls.Read().MsgCtlmax);
            return;
        }
        using var ns = FileDescriptor.Open($"/proc/{root.Pid}/ns/{Link}", O.RDONLY);
        using (Setns.EnterIpc(ns))
        {
            var sysctls = IpcSysctls.Read();
            session.WriteSingle(ImageTypes.IpcnsVar, image, sysctls);
            var segments = SysvIpc.List(SysvKind.SharedMemory).ToDictionary(s => s.Id);
            SysvAttachments.Check(session, segments);
            SysvObjectImages.SaveSegments(session, image, segments.Values);
            SysvObjectImages.SaveSemaphores(session, image, SysvIpc.List(SysvKind.Semaphores));
            SysvObjectImages.SaveQueues(session, image, SysvIpc.List(SysvKind.MessageQueue), (int)sysctls.MsgCtlmax);
        }
        session.Log.Detail($"IPC namespace of {root.Pid} saved");
    }

    // The objects of the host's namespace the user named by key (-IpcKey), by kind; a key no object has is an error.
    private static Dictionary<SysvKind, List<SysvObject>> NamedObjects(DumpSession session)
    {
        var keys = session.Options.IpcKeys;
        var named = Enum.GetValues<SysvKind>().ToDictionary(k => k, k => SysvIpc.List(k).Where(o => o.Key != SysvIpc.IpcPrivate && keys.Contains(o.Key)).ToList());
        foreach (var key in keys.Where(k => k == SysvIpc.IpcPrivate || !named.Values.Any(objects => objects.Any(o => o.Key == k))))
        {
            throw new CheckpointException(CheckpointErrorKind.DumpFailed,
                key == SysvIpc.IpcPrivate ? "-IpcKey names key 0 (IPC_PRIVATE), which is no object's key: objects made with it cannot be named."
                    : $"-IpcKey names key 0x{key:x8}, and no System V object of the host's IPC namespace has it.",
                session.Processes[0].Pid, "Name keys that ipcs lists (its key column).");
        }
        return named;
    }

    /// <summary>Whether the image's root lived in an IPC namespace of its own (root_ids name another).</summary>
    public static bool OwnNamespace(ImageSet images) =>
        images.Inventory.RootIds is { HasIpcNsId: true } rootIds && rootIds.IpcNsId != images.Root.Ids.IpcNsId;

    /// <summary>What this session lacks to make the namespace: unshare(CLONE_NEWIPC) and setns need CAP_SYS_ADMIN.</summary>
    public static IEnumerable<Obstacle> Obstacles(ImageSet images, SessionPrivileges privileges)
    {
        if (OwnNamespace(images) && !privileges.Has(Capability.SysAdmin))
        {
            yield return new("it lived in an IPC namespace of its own, and making one (unshare) and entering it (setns) needs CAP_SYS_ADMIN", Capability.SysAdmin);
        }
    }

    /// <summary>
    /// Once the processes exist and before their memory: the root makes the namespace (own namespace) and the others
    /// join it, then the saved objects are made in it; in the host namespace the saved segments are found or made.
    /// </summary>
    public static void Restore(RestoreSession session, IReadOnlyList<RestoringProcess> processes)
    {
        var saved = SavedObjects.Read(session.Images);
        var root = processes[0];
        var state = session.State<IpcRestoreState>();
        if (!saved.Own)
        {
            foreach (var (segment, contents) in saved.Segments)
            {
                FindOrMake(session, SysvKind.SharedMemory, segment.Desc, segment.Size, () => SysvObjectImages.MakeSegment(segment, contents));
            }
            foreach (var (set, values) in saved.Semaphores)
            {
                FindOrMake(session, SysvKind.Semaphores, set.Desc, set.Nsems, () => SysvObjectImages.MakeSemaphores(set, values));
            }
            foreach (var (queue, messages) in saved.Queues)
            {
                FindOrMake(session, SysvKind.MessageQueue, queue.Desc, 0, () => SysvObjectImages.MakeQueue(queue, messages));
            }
            PosixQueues.Restore(session, ownNamespace: false);
            return;
        }
        root.Caller.Checked("unshare(CLONE_NEWIPC)", RemoteCall.Unshare(LibC.CLONE_NEWIPC));
        foreach (var process in processes.Skip(1))
        {
            ProcessNamespaces.Join(process.Injection, $"/proc/{root.HostPid}/ns/{Link}", LibC.CLONE_NEWIPC, $"the IPC namespace of {root.Pid}");
        }
        state.Namespace = FileDescriptor.Open($"/proc/{root.HostPid}/ns/{Link}", O.RDONLY);
        using (Setns.EnterIpc(state.Namespace))
        {
            IpcSysctls.RestoreLimits(saved.Sysctls!);
            foreach (var segment in saved.Segments)
            {
                SysvObjectImages.MakeSegment(segment.Entry, segment.Contents);
            }
            foreach (var (set, values) in saved.Semaphores)
            {
                SysvObjectImages.MakeSemaphores(set, values);
            }
            foreach (var (queue, messages) in saved.Queues)
            {
                SysvObjectImages.MakeQueue(queue, messages);
            }
            PosixQueues.Restore(session, ownNamespace: true);
        }
        session.Log.Detail($"IPC namespace made again: {saved.Segments.Count} segment(s), {saved.Semaphores.Count} semaphore set(s), {saved.Queues.Count} queue(s), {processes.Count} process(es) in it");
    }

    // An object of the host's namespace, found or made; one made is removed again if the restore fails.
    private static void FindOrMake(RestoreSession session, SysvKind kind, IpcDescEntry desc, ulong shape, Action make)
    {
        if (HostObjects.FindOrMake(session, kind, desc, shape, make))
        {
            session.State<IpcRestoreState>().MadeInHost.Add((kind, (int)desc.Id));
        }
    }

    /// <summary>
    /// Once every process has attached its segments: a segment that was marked for removal is marked again (it goes
    /// with its last detach, as before), and an own namespace gets its saved next ids.
    /// </summary>
    public static void Finish(RestoreSession session)
    {
        var saved = SavedObjects.Read(session.Images);
        var state = session.State<IpcRestoreState>();
        using var inside = state.Namespace is null ? null : Setns.EnterIpc(state.Namespace);
        foreach (var segment in saved.Segments.Where(s => (s.Entry.Desc.Mode & SysvIpc.ShmDest) != 0))
        {
            if (saved.Own || state.MadeInHost.Contains((SysvKind.SharedMemory, (int)segment.Entry.Desc.Id)))
            {
                SysvIpc.Remove(SysvKind.SharedMemory, (int)segment.Entry.Desc.Id);
            }
        }
        if (saved.Own)
        {
            IpcSysctls.RestoreNextIds(saved.Sysctls!);
        }
    }

    /// <summary>The restore succeeded: the segments and POSIX queues made in the host namespace stay.</summary>
    public static void Keep(RestoreSession session)
    {
        session.State<IpcRestoreState>().MadeInHost.Clear();
        PosixQueues.Keep(session);
    }

    /// <summary>
    /// What one restore made: the namespace (held open to enter it again), and the segments made in the host's, which
    /// a restore that fails removes (a made namespace dies with its processes).
    /// </summary>
    private sealed class IpcRestoreState : IDisposable
    {
        public FileDescriptor? Namespace { get; set; }

        public List<(SysvKind Kind, int Id)> MadeInHost { get; } = new();

        public void Dispose()
        {
            foreach (var (kind, id) in MadeInHost)
            {
                try
                {
                    SysvIpc.Remove(kind, id);
                }
                catch (NativeException)
                {
                    // someone removed it already: nothing of ours is left
                }
            }
            MadeInHost.Clear();
            Namespace?.Dispose();
        }
    }
}
