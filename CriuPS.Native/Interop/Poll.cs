using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>poll(2) on one descriptor.</summary>
public static unsafe class Poll
{
    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> for <paramref name="fd"/> to be readable (POLLIN); true when it is,
    /// false when the time ran out or a signal interrupted the wait.
    /// </summary>
    public static bool Readable(FileDescriptor fd, int timeoutMs)
    {
        var entry = new pollfd { fd = fd.Value, events = LibC.POLLIN };
        int ready = LibC.poll(&entry, 1, timeoutMs);
        if (ready < 0)
        {
            int errno = LibC.errno;
            return errno == Errno.EINTR ? false : throw new NativeException("poll", errno);
        }
        return ready > 0 && (entry.revents & LibC.POLLIN) != 0;
    }
}
