using System.Runtime.InteropServices;
using CriuPS.Native.Memory;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// Write tracking with a userfaultfd (linux/userfaultfd.h): asynchronous write protection (UFFD_FEATURE_WP_ASYNC),
/// where the kernel itself lifts the protection of a page on its first write and the PAGEMAP_SCAN ioctl reads which
/// pages were written. The ioctls act on the address space the descriptor was created in, whichever process holds
/// it: the descriptor is made inside the tracked process and used from here.
/// </summary>
public static unsafe partial class Userfaultfd
{
    /// <summary>UFFDIO_REGISTER_MODE_WP: the range may be write-protected.</summary>
    public const ulong RegisterModeWp = 2;

    /// <summary>_IOWR(0xAA, 0x06, struct uffdio_writeprotect).</summary>
    private const int UffdioWriteprotect = unchecked((int)0xC018AA06);

    /// <summary>UFFDIO_WRITEPROTECT_MODE_WP: set the protection (without it, lift it).</summary>
    private const ulong WriteprotectModeWp = 1;

    /// <summary>UFFD_PAGEFAULT_FLAG_WP in a page fault's flags: a write to a protected page (synchronous mode).</summary>
    public const ulong PageFaultFlagWp = 2;

    [StructLayout(LayoutKind.Sequential)]
    private struct UffdioWriteprotectArgs
    {
        public UffdioRange Range;
        public ulong Mode;
    }

    /// <summary>A userfaultfd of this process's own address space (userfaultfd(2)), without its handshake.</summary>
    public static FileDescriptor Create(ulong flags) =>
        new((int)Syscall.Checked("userfaultfd", SystemCall.Userfaultfd, flags));

    /// <summary>UFFDIO_API: the handshake every userfaultfd needs before anything else, asking for <paramref name="features"/>.</summary>
    public static void Handshake(FileDescriptor uffd, ulong features)
    {
        var args = new UffdioApiArgs { Api = Api, Features = features };
        if (LibC.ioctl(uffd.Value, UffdioApi, &args) < 0)
        {
            throw new NativeException($"ioctl(UFFDIO_API, features 0x{features:x})", LibC.errno);
        }
    }

    /// <summary>UFFDIO_REGISTER in write-protect mode: the range must be whole areas; returns 0 or the errno.</summary>
    public static int TryRegisterWriteProtect(FileDescriptor uffd, AddressRange range)
    {
        var args = new UffdioRegisterArgs { Range = new UffdioRange { Start = range.Start.Value, Length = range.Length.Value }, Mode = RegisterModeWp };
        return LibC.ioctl(uffd.Value, UffdioRegister, &args) < 0 ? LibC.errno : 0;
    }

    /// <summary>
    /// UFFDIO_WRITEPROTECT: protects every page of a registered range, present or not (with UFFD_FEATURE_WP_UNPOPULATED),
    /// so that the next write to each is recorded.
    /// </summary>
    public static void WriteProtect(FileDescriptor uffd, AddressRange range)
    {
        int errno = TryWriteProtect(uffd, range);
        if (errno != 0)
        {
            throw new NativeException($"ioctl(UFFDIO_WRITEPROTECT, {range})", errno);
        }
    }

    /// <summary>
    /// <see cref="WriteProtect"/> that returns 0 or the errno: EAGAIN while an mremap, munmap or madvise event waits
    /// to be read, ENOENT where the range is no longer registered, ESRCH once the address space is gone.
    /// </summary>
    public static int TryWriteProtect(FileDescriptor uffd, AddressRange range)
    {
        var args = new UffdioWriteprotectArgs { Range = new UffdioRange { Start = range.Start.Value, Length = range.Length.Value }, Mode = WriteprotectModeWp };
        return LibC.ioctl(uffd.Value, UffdioWriteprotect, &args) < 0 ? LibC.errno : 0;
    }

    /// <summary>
    /// UFFDIO_WRITEPROTECT without UFFDIO_WRITEPROTECT_MODE_WP: lifts the protection of <paramref name="range"/> and
    /// wakes the threads whose writes wait there (synchronous mode). Returns 0 or the errno: EAGAIN while an mremap,
    /// munmap or madvise event waits to be read, ENOENT where the range is no longer registered, ESRCH once the
    /// address space is gone.
    /// </summary>
    public static int TryUnprotect(FileDescriptor uffd, AddressRange range)
    {
        var args = new UffdioWriteprotectArgs { Range = new UffdioRange { Start = range.Start.Value, Length = range.Length.Value }, Mode = 0 };
        return LibC.ioctl(uffd.Value, UffdioWriteprotect, &args) < 0 ? LibC.errno : 0;
    }
}
