using CriuPS.Engine.Errors;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Lazy;

/// <summary>
/// Gives a process being restored a userfaultfd that reports its missing pages: userfaultfd(), UFFDIO_API and
/// UFFDIO_REGISTER run inside it as injected calls, the descriptor is pulled into our process with pidfd_getfd and
/// the process's own copy closed, so that it ends with no descriptor it did not have. The registration belongs to
/// its address space and stays valid in our hands.
/// </summary>
internal static class UffdRegistration
{
    /// <summary>
    /// Non-cooperative events, so that a process that forks, moves, discards or unmaps memory while pages still
    /// arrive is followed instead of finding zeros: a forked child gets its own userfaultfd (filled like its
    /// parent), moved pages keep their registration, discarded and unmapped pages are not delivered.
    /// </summary>
    public const ulong Features = Userfaultfd.FeatureEventFork | Userfaultfd.FeatureEventRemap | Userfaultfd.FeatureEventRemove | Userfaultfd.FeatureEventUnmap;

    public static FileDescriptor Register(RestoringProcess process, IReadOnlyList<AddressRange> areas)
    {
        var caller = process.Caller;
        var scratch = process.Injection.Scratch;
        // Non-blocking: our fault loop reads events without waiting. Not UFFD_USER_MODE_ONLY: the kernel's own
        // accesses to lazy memory (a signal frame, rseq, a read() into a buffer) must wait for the page too.
        // Such a userfaultfd needs CAP_SYS_PTRACE (unless vm.unprivileged_userfaultfd is 1) in the process, which
        // has the session's capabilities until its own are restored.
        long made = caller.Call(RemoteCall.Userfaultfd(O.CLOEXEC | O.NONBLOCK));
        if (made == -Errno.EPERM)
        {
            throw MissingPrivilege.For(Capability.SysPtrace,
                $"A lazy restore's userfaultfd in process {process.Pid}, which the kernel's own accesses to its memory wait on,", process.Pid,
                new NativeException("userfaultfd", Errno.EPERM));
        }
        if (made < 0)
        {
            throw new NativeException($"userfaultfd in {process.Pid}", (int)-made);
        }
        int fd = (int)made;
        try
        {
            scratch.Reset();
            var api = scratch.Put(new Userfaultfd.UffdioApiArgs { Api = Userfaultfd.Api, Features = Features });
            caller.Checked("ioctl(UFFDIO_API)", RemoteCall.Ioctl(fd, unchecked((uint)Userfaultfd.UffdioApi), api.Value));
            foreach (var area in areas)
            {
                scratch.Reset();
                var args = scratch.Put(new Userfaultfd.UffdioRegisterArgs
                {
                    Range = new Userfaultfd.UffdioRange { Start = area.Start.Value, Length = area.Length.Value },
                    Mode = Userfaultfd.RegisterModeMissing,
                });
                caller.Checked($"ioctl(UFFDIO_REGISTER) of {area}", RemoteCall.Ioctl(fd, unchecked((uint)Userfaultfd.UffdioRegister), args.Value));
                var answer = scratch.Memory.Read<Userfaultfd.UffdioRegisterArgs>(args);
                if ((answer.Ioctls & Userfaultfd.IoctlCopyAndZeropage) != Userfaultfd.IoctlCopyAndZeropage)
                {
                    throw new CheckpointException(CheckpointErrorKind.RestoreFailed,
                        $"The kernel cannot fill area {area} of process {process.Pid} with UFFDIO_COPY; restore it without -LazyPages.", process.Pid);
                }
            }
            using var pidfd = Pidfd.Open(process.Pid);
            return Pidfd.GetFd(pidfd, fd);
        }
        finally
        {
            caller.Call(RemoteCall.Close(fd));
        }
    }
}
