using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// The descriptors a process being restored maps its file-backed areas through. A file that still has its path is
/// opened by the process itself; objects only the engine can provide (shared anonymous memory, memfds, deleted files
/// created again) are pulled from the engine with pidfd_getfd. Each is opened once per file and open flags, and all
/// are closed once the areas are mapped (a mapping keeps its file, and the flock and OFD locks taken through it).
/// </summary>
internal sealed class MappedFiles : IDisposable
{
    private readonly RestoreSession session;
    private readonly RestoringProcess process;
    private readonly Dictionary<(ulong Id, uint Flags), int> byPath = new();
    private readonly Dictionary<int, int> pulled = new();
    private int enginePidfd = -1;

    public MappedFiles(RestoreSession session, RestoringProcess process)
    {
        this.session = session;
        this.process = process;
    }

    /// <summary>The process's descriptor of the file an area maps, holding the locks saved with the area.</summary>
    public int For(VmaEntry area)
    {
        int fd = Open(area);
        if (area.CriupsLocks.Count > 0)
        {
            MappedFileLocks.Take(process, area, fd, session.Images.File((uint)area.Shmid) is { Reg: { } reg } ? reg.Name : $"file {area.Shmid}");
        }
        return fd;
    }

    private int Open(VmaEntry area)
    {
        var status = (VmaStatus)area.Status;
        uint openFlags = area.HasFdflags ? area.Fdflags : (uint)O.RDONLY;
        if ((status & VmaStatus.AnonShared) != 0)
        {
            return Pull(SharedMemory.Object(session, area.Shmid));
        }
        if ((status & VmaStatus.Socket) != 0)
        {
            // A packet socket's ring: the socket was made with its rings, among the process's descriptions.
            return Pull(session.OpenFiles.TryGetValue((uint)area.Shmid, out var socket) ? socket : throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                $"mm-{process.Pid}.img: the area at {area.Start:x} maps the socket of file id {area.Shmid}, which no descriptor of the image holds.", session.Images.Directory));
        }
        if ((status & VmaStatus.Memfd) != 0)
        {
            return Pull(Memfds.ForMapping(session, (uint)area.Shmid, openFlags));
        }
        var file = session.Images.File((uint)area.Shmid);
        var ghost = GhostFiles.GhostOf(session.Images, file.Id);
        if (ghost is not null)
        {
            return Pull(GhostFiles.ForMapping(session, file.Reg, ghost.Value, (int)openFlags));
        }
        if (!byPath.TryGetValue((area.Shmid, openFlags), out int opened))
        {
            var scratch = process.Injection.Scratch;
            scratch.Reset();
            opened = process.Caller.Checked($"open of mapped file {file.Reg.Name}", RemoteCall.Open(scratch, file.Reg.Name, (int)openFlags | O.CLOEXEC));
            byPath[(area.Shmid, openFlags)] = opened;
        }
        return opened;
    }

    private int Pull(FileDescriptor ours)
    {
        if (!pulled.TryGetValue(ours.Value, out int theirs))
        {
            if (enginePidfd < 0)
            {
                enginePidfd = process.Caller.Checked("pidfd_open of the engine", session.EnginePidfdCall);
            }
            theirs = process.Caller.Checked("pidfd_getfd of a mapped object", RemoteCall.PidfdGetfd(enginePidfd, ours.Value));
            pulled[ours.Value] = theirs;
        }
        return theirs;
    }

    public void Dispose()
    {
        foreach (int fd in byPath.Values.Concat(pulled.Values).Append(enginePidfd).Where(fd => fd >= 0))
        {
            process.Caller.Call(RemoteCall.Close(fd));
        }
    }
}
