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
}
