using System.Runtime.InteropServices;
using CriuPS.Native.Memory;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// Missing-page handling with a userfaultfd (linux/userfaultfd.h): the registration structures, reading fault and
/// non-cooperative events (fork, mremap, madvise, munmap), and resolving faults with UFFDIO_COPY, UFFDIO_ZEROPAGE and
/// UFFDIO_WAKE. The ioctls act on the address space the descriptor was created in, whichever process holds it.
/// </summary>
public static unsafe partial class Userfaultfd
{
    /// <summary>UFFD_FEATURE_EVENT_FORK: a fork gives the child a userfaultfd of its own, delivered in the event.</summary>
    public const ulong FeatureEventFork = 1UL << 1;

    /// <summary>UFFD_FEATURE_EVENT_REMAP: mremap keeps the registration and says where the pages went.</summary>
    public const ulong FeatureEventRemap = 1UL << 2;

    /// <summary>UFFD_FEATURE_EVENT_REMOVE: madvise(MADV_DONTNEED/REMOVE) of registered memory is reported.</summary>
    public const ulong FeatureEventRemove = 1UL << 3;

    /// <summary>UFFD_FEATURE_EVENT_UNMAP: munmap of registered memory is reported.</summary>
    public const ulong FeatureEventUnmap = 1UL << 6;

    /// <summary>UFFDIO_REGISTER_MODE_MISSING: report accesses to pages that are not there yet.</summary>
    public const ulong RegisterModeMissing = 1;

    /// <summary>_IOWR(0xAA, 0x00, struct uffdio_register).</summary>
    public const int UffdioRegister = unchecked((int)0xC020AA00);

    private const int UffdioUnregister = unchecked((int)0x8010AA01); // _IOR(0xAA, 0x01, struct uffdio_range)
    private const int UffdioWake = unchecked((int)0x8010AA02); // _IOR(0xAA, 0x02, struct uffdio_range)
    private const int UffdioCopy = unchecked((int)0xC028AA03); // _IOWR(0xAA, 0x03, struct uffdio_copy)
    private const int UffdioZeropage = unchecked((int)0xC020AA04); // _IOWR(0xAA, 0x04, struct uffdio_zeropage)

    /// <summary>The bits UFFDIO_REGISTER sets in its ioctls field for UFFDIO_COPY and UFFDIO_ZEROPAGE (1 &lt;&lt; _UFFDIO_*).</summary>
    public const ulong IoctlCopyAndZeropage = (1UL << 3) | (1UL << 4);

    /// <summary>Size of one struct uffd_msg.</summary>
    public const int MessageSize = 32;

    /// <summary>struct uffdio_range.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct UffdioRange
    {
        public ulong Start;
        public ulong Length;
    }

    /// <summary>struct uffdio_register: the range and mode going in, the ioctls the range supports coming out.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct UffdioRegisterArgs
    {
        public UffdioRange Range;
        public ulong Mode;
        public ulong Ioctls;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct UffdioCopyArgs
    {
        public ulong Destination;
        public ulong Source;
        public ulong Length;
        public ulong Mode;
        public long Copied;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct UffdioZeropageArgs
    {
        public UffdioRange Range;
        public ulong Mode;
        public long Zeroed;
    }

    /// <summary>
    /// Reads the events waiting on a non-blocking userfaultfd into <paramref name="messages"/>; returns how many (0
    /// when none are waiting). A fork event installs the child's userfaultfd in this process as it is read.
    /// </summary>
    public static int ReadEvents(FileDescriptor uffd, Span<UffdMessage> messages)
    {
        fixed (UffdMessage* p = messages)
        {
            while (true)
            {
                long n = (long)LibC.read(uffd.Value, p, (size_t)(ulong)(messages.Length * MessageSize));
                if (n >= 0)
                {
                    return (int)(n / MessageSize);
                }
                int errno = LibC.errno;
                if (errno == Errno.EAGAIN)
                {
                    return 0;
                }
                if (errno != Errno.EINTR)
                {
                    throw new NativeException("read of userfaultfd events", errno);
                }
            }
        }
    }

    /// <summary>
    /// UFFDIO_COPY: places <paramref name="data"/> (whole pages) at <paramref name="destination"/> and wakes the
    /// threads waiting there. Returns the bytes placed and the errno that stopped it (0 when all were placed):
    /// EEXIST at a page already there, EAGAIN when the layout is changing (read the events, then retry), ENOENT or
    /// EINVAL where nothing registered is mapped, ESRCH when the address space is gone.
    /// </summary>
    public static (long Placed, int Errno) Copy(FileDescriptor uffd, Address destination, ReadOnlySpan<byte> data)
    {
        fixed (byte* source = data)
        {
            var args = new UffdioCopyArgs { Destination = destination.Value, Source = (ulong)source, Length = (ulong)data.Length };
            return Resolve(uffd, UffdioCopy, &args, &args.Copied);
        }
    }

    /// <summary>UFFDIO_ZEROPAGE: maps zero pages over <paramref name="range"/> and wakes its waiters; errors as <see cref="Copy"/>.</summary>
    public static (long Placed, int Errno) ZeroPage(FileDescriptor uffd, AddressRange range)
    {
        var args = new UffdioZeropageArgs { Range = new UffdioRange { Start = range.Start.Value, Length = range.Length.Value } };
        return Resolve(uffd, UffdioZeropage, &args, &args.Zeroed);
    }

    /// <summary>UFFDIO_WAKE: wakes threads waiting on <paramref name="range"/> (whose pages someone else put there).</summary>
    public static void Wake(FileDescriptor uffd, AddressRange range)
    {
        var args = new UffdioRange { Start = range.Start.Value, Length = range.Length.Value };
        if (LibC.ioctl(uffd.Value, UffdioWake, &args) < 0)
        {
            throw new NativeException($"ioctl(UFFDIO_WAKE, {range})", LibC.errno);
        }
    }

    /// <summary>UFFDIO_UNREGISTER: ends fault reporting for <paramref name="range"/>; returns 0 or the errno.</summary>
    public static int Unregister(FileDescriptor uffd, AddressRange range)
    {
        var args = new UffdioRange { Start = range.Start.Value, Length = range.Length.Value };
        return LibC.ioctl(uffd.Value, UffdioUnregister, &args) < 0 ? LibC.errno : 0;
    }

    // COPY and ZEROPAGE write the bytes done (or -errno) back into the argument, and fail with EAGAIN after a part.
    private static (long Placed, int Errno) Resolve(FileDescriptor uffd, int request, void* args, long* done)
    {
        while (true)
        {
            *done = 0;
            if (LibC.ioctl(uffd.Value, request, args) == 0)
            {
                return (*done, 0);
            }
            int errno = LibC.errno;
            if (errno == Errno.EINTR && *done == 0)
            {
                continue;
            }
            return (Math.Max(*done, 0), errno);
        }
    }
}
