using CriuPS.Native.Arch;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;

namespace CriuPS.Native.RemoteSyscall;

// Calls on the target's descriptors: open, duplicate, move, close, and the few operations on one.
public readonly partial record struct RemoteCall
{
    private const ulong AtCurrentDirectory = unchecked((ulong)Fcntl.AT_FDCWD);

    public static RemoteCall Close(int fd) => new(SystemCall.Close, (ulong)fd);

    /// <summary>close_range of the descriptors <paramref name="first"/> to <paramref name="last"/>, both included.</summary>
    public static RemoteCall CloseRange(uint first, uint last) => new(SystemCall.CloseRange, first, last, 0);

    /// <summary>dup3: <paramref name="fd"/> copied to the number <paramref name="to"/>.</summary>
    public static RemoteCall<int> Dup3(int fd, int to, bool closeOnExec) =>
        ReturningNumber(new(SystemCall.Dup3, (ulong)fd, (ulong)to, closeOnExec ? (ulong)O.CLOEXEC : 0));

    /// <summary>fcntl(F_DUPFD_CLOEXEC): a copy of <paramref name="fd"/> at the lowest free number from <paramref name="lowest"/>.</summary>
    public static RemoteCall<int> DuplicateCloseOnExec(int fd, int lowest) =>
        ReturningNumber(new(SystemCall.Fcntl, (ulong)fd, Fcntl.F_DUPFD_CLOEXEC, (ulong)lowest));

    /// <summary>fcntl(F_SETFD): the descriptor flags (FD_CLOEXEC).</summary>
    public static RemoteCall SetDescriptorFlags(int fd, int flags) => new(SystemCall.Fcntl, (ulong)fd, Fcntl.F_SETFD, (ulong)flags);

    /// <summary>fcntl(F_SETFL): the status flags of the description (O_APPEND, O_NONBLOCK, O_ASYNC...).</summary>
    public static RemoteCall SetStatusFlags(int fd, uint flags) => new(SystemCall.Fcntl, (ulong)fd, Fcntl.F_SETFL, flags);

    /// <summary>fcntl(F_SETLEASE) of <paramref name="type"/> (F_RDLCK, F_WRLCK).</summary>
    public static RemoteCall SetLease(int fd, uint type) => new(SystemCall.Fcntl, (ulong)fd, Fcntl.F_SETLEASE, type);

    /// <summary>fcntl(F_SETLK, or F_OFD_SETLK for a lock of the open file description) of the struct flock at <paramref name="lockAt"/>.</summary>
    public static RemoteCall SetRecordLock(int fd, bool ofDescription, Address lockAt) =>
        new(SystemCall.Fcntl, (ulong)fd, (ulong)(ofDescription ? Fcntl.F_OFD_SETLK : Fcntl.F_SETLK), lockAt.Value);

    public static RemoteCall Flock(int fd, int operation) => new(SystemCall.Flock, (ulong)fd, (ulong)operation);

    public static RemoteCall<int> PidfdOpen(int pid) => ReturningNumber(new(SystemCall.PidfdOpen, (ulong)pid, 0));

    /// <summary>pidfd_getfd: a copy of the descriptor <paramref name="fd"/> of the process of <paramref name="pidfd"/>.</summary>
    public static RemoteCall<int> PidfdGetfd(int pidfd, int fd) => ReturningNumber(new(SystemCall.PidfdGetfd, (ulong)pidfd, (ulong)fd, 0));

    /// <summary>openat(AT_FDCWD) of the path at <paramref name="path"/>.</summary>
    public static RemoteCall<int> Open(Address path, int flags) => ReturningNumber(new(SystemCall.Openat, AtCurrentDirectory, path.Value, (ulong)flags));

    /// <summary>openat(AT_FDCWD) of <paramref name="path"/>, put in <paramref name="scratch"/>.</summary>
    public static RemoteCall<int> Open(ScratchArea scratch, string path, int flags) => Open(scratch.PutString(path), flags);

    public static RemoteCall Write(int fd, Address data, ByteCount length) => new(SystemCall.Write, (ulong)fd, data.Value, length.Value);

    /// <summary>preadv into the <paramref name="count"/> iovecs at <paramref name="iovecs"/>, from <paramref name="offset"/>.</summary>
    public static RemoteCall Preadv(int fd, Address iovecs, int count, long offset) =>
        new(SystemCall.Preadv, (ulong)fd, iovecs.Value, (ulong)count, (ulong)offset, 0);

    /// <summary>ioctl with a request number as the kernel reads it (an unsigned int) and a pointer or value argument.</summary>
    public static RemoteCall Ioctl(int fd, uint request, ulong argument) => new(SystemCall.Ioctl, (ulong)fd, request, argument);

    /// <summary>epoll_ctl(EPOLL_CTL_ADD) of <paramref name="fd"/> with the struct epoll_event at <paramref name="eventAt"/>.</summary>
    public static RemoteCall EpollAdd(int epollFd, int fd, Address eventAt) =>
        new(SystemCall.EpollCtl, (ulong)epollFd, Epoll.CtlAdd, (ulong)fd, eventAt.Value);

    public static RemoteCall<int> Userfaultfd(ulong flags) => ReturningNumber(new(SystemCall.Userfaultfd, flags));

    /// <summary>setsockopt with the option value at <paramref name="value"/>.</summary>
    public static RemoteCall Setsockopt(int fd, int level, int name, Address value, ByteCount length) =>
        new(SystemCall.Setsockopt, (ulong)fd, (ulong)level, (ulong)name, value.Value, length.Value);
}
