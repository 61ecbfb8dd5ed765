using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>eventfd(2): a 64-bit counter behind a descriptor.</summary>
public static unsafe class Eventfd
{
    /// <summary>EFD_SEMAPHORE: each read takes 1 from the counter instead of emptying it.</summary>
    public const int Semaphore = 1;

    /// <summary>
    /// A new eventfd holding <paramref name="counter"/>. eventfd(2) only takes a 32-bit initial value, so the
    /// counter is written into an empty one (a write adds to the counter).
    /// </summary>
    public static FileDescriptor Create(ulong counter, int flags)
    {
        int fd = LibC.eventfd(0, flags | O.CLOEXEC);
        if (fd < 0)
        {
            throw new NativeException("eventfd", LibC.errno);
        }
        var eventfd = new FileDescriptor(fd);
        if (counter != 0 && (long)LibC.write(fd, &counter, sizeof(ulong)) != sizeof(ulong))
        {
            int errno = LibC.errno;
            eventfd.Dispose();
            throw new NativeException("write of the eventfd counter", errno, $"counter {counter}");
        }
        return eventfd;
    }

    /// <summary>Adds one to the counter: wakes whoever polls the descriptor.</summary>
    public static void Signal(FileDescriptor eventfd)
    {
        ulong one = 1;
        LibC.write(eventfd.Value, &one, sizeof(ulong));
    }

    /// <summary>Empties the counter of a non-blocking eventfd, so that polling it waits again.</summary>
    public static void Drain(FileDescriptor eventfd)
    {
        ulong counter;
        LibC.read(eventfd.Value, &counter, sizeof(ulong));
    }
}
