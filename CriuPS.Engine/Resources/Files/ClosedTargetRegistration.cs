using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// Makes again an epoll registration whose number the process had closed (its file kept by another descriptor): epoll
/// keys a registration by the number it is added under, so the file is put at that number just for epoll_ctl, and the
/// number is given back to what the process has there (or closed again). Closing a number does not end a registration;
/// only the end of its file does.
/// </summary>
internal static class ClosedTargetRegistration
{
    public static void Add(RestoreSession session, RestoringProcess process, FdinfoEntry epoll, EventpollTfdEntry target)
    {
        var caller = process.Caller;
        int number = (int)target.Tfd;
        var occupant = process.Images.FileDescriptors.FirstOrDefault(f => f.Fd == number);
        // Every descriptor of ours goes above the numbers the process uses, so that none lands on the number itself.
        int above = Math.Max(number, process.Images.FileDescriptors.Max(f => (int)f.Fd)) + 1;
        int pidfd = caller.OpenEnginePidfd(session, above);
        if (!session.OpenFiles.TryGetValue(target.CriupsFileId, out var file))
        {
            var image = Path.Combine(session.Images.Directory, "files.img");
            throw new Errors.CheckpointException(Errors.CheckpointErrorKind.ImageCorrupt,
                $"{image}: epoll fd {epoll.Fd} of process {process.Pid} watches file {target.CriupsFileId} as fd {number}, and no descriptor of the image holds that file.", image);
        }
        int pulled = caller.MoveAbove(caller.Checked($"pidfd_getfd of file {target.CriupsFileId}", RemoteCall.PidfdGetfd(pidfd, file.Value)), above, "the watched file");
        caller.Call(RemoteCall.Close(pidfd));
        int kept = occupant is null ? -1 : caller.Checked($"fcntl(F_DUPFD_CLOEXEC) of fd {number}", RemoteCall.DuplicateCloseOnExec(number, above));
        caller.Checked($"dup3 to fd {number}", RemoteCall.Dup3(pulled, number, closeOnExec: false));
        // The instance itself may be what sits at that number now.
        int epollFd = epoll.Fd == number ? kept : (int)epoll.Fd;
        process.Injection.Scratch.Reset();
        var ev = process.Injection.Scratch.Put(EpollInstances.Event(target));
        caller.Checked($"epoll_ctl(fd {epoll.Fd}, EPOLL_CTL_ADD, fd {number}) of a file closed since", RemoteCall.EpollAdd(epollFd, number, ev));
        if (occupant is null)
        {
            caller.Checked($"close of fd {number}", RemoteCall.Close(number));
        }
        else
        {
            bool closeOnExec = (occupant.Flags & Fcntl.FD_CLOEXEC) != 0;
            caller.Checked($"dup3 back to fd {number}", RemoteCall.Dup3(kept, number, closeOnExec));
            caller.Call(RemoteCall.Close(kept));
        }
        caller.Call(RemoteCall.Close(pulled));
        session.Log.Detail($"process {process.Pid}: epoll fd {epoll.Fd} watches file {target.CriupsFileId} as fd {number} again, a number it had closed");
    }
}
