using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>poll(2) of one descriptor.</summary>
public static unsafe class Poll
{
    public static short In => LibC.POLLIN;

    /// <summary>
    /// Polls <paramref name="descriptor"/> for <paramref name="events"/>, waiting at most
    /// <paramref name="timeoutMilliseconds"/> (0: not at all); returns the events that occurred, or minus the errno.
    /// </summary>
    public static int Once(FileDescriptor descriptor, short events, int timeoutMilliseconds)
    {
        var entry = new pollfd { fd = descriptor.Value, events = events };
        int ready = LibC.poll(&entry, 1, timeoutMilliseconds);
        return ready < 0 ? -LibC.errno : entry.revents;
    }

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> for <paramref name="fd"/> to be readable (POLLIN); true when it is,
    /// false when the time ran out or a signal interrupted the wait.
    /// </summary>
    public static bool Readable(FileDescriptor fd, int timeoutMs)
    {
        int events = Once(fd, LibC.POLLIN, timeoutMs);
        if (events < 0)
        {
            return -events == Errno.EINTR ? false : throw new NativeException("poll", -events);
        }
        return (events & LibC.POLLIN) != 0;
    }

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> for any of <paramref name="descriptors"/> to be readable or to report a
    /// hang-up or error (which poll reports unasked); sets <paramref name="ready"/>[i] for each descriptor that has an
    /// event. False, with nothing set, when the wait was cut short (a signal; or a descriptor closed meanwhile, which
    /// the caller finds out by looking again).
    /// </summary>
    public static bool AnyReadable(IReadOnlyList<FileDescriptor> descriptors, Span<bool> ready, int timeoutMs)
    {
        var entries = new pollfd[descriptors.Count];
        for (int i = 0; i < entries.Length; i++)
        {
            entries[i] = new pollfd { fd = descriptors[i].Value, events = LibC.POLLIN };
        }
        fixed (pollfd* first = entries)
        {
            if (LibC.poll(first, (ulong_t)(ulong)entries.Length, timeoutMs) < 0)
            {
                return false;
            }
        }
        for (int i = 0; i < entries.Length; i++)
        {
            ready[i] = entries[i].revents != 0;
        }
        return true;
    }
}
