namespace CriuPS.Native.Interop;

/// <summary>
/// POSIX message queues through the raw system calls (mq_open, mq_unlink, mq_timedsend, mq_timedreceive,
/// mq_getsetattr): a queue descriptor is a file of the mqueue file system of an IPC namespace, and mq_open and
/// mq_unlink work in the IPC namespace of the calling thread.
/// </summary>
public static unsafe class PosixMqueue
{
    /// <summary>Opens the queue <paramref name="name"/> ("/name") of the calling thread's IPC namespace; null when there is none (ENOENT).</summary>
    public static FileDescriptor? Open(string name, int flags)
    {
        fixed (byte* path = FileDescriptor.NullTerminated(Bare(name)))
        {
            long fd = Syscall.Raw(SystemCall.MqOpen, (ulong)path, (ulong)(flags | O.CLOEXEC), 0, 0);
            return fd == -Errno.ENOENT ? null : new FileDescriptor((int)Checked($"mq_open of {name}", fd));
        }
    }

    /// <summary>Creates the queue (failing when it exists) with its limits; its owner is the calling thread's effective user and group.</summary>
    public static FileDescriptor Create(string name, int flags, uint mode, long maxMessages, long messageSize)
    {
        long* attr = stackalloc long[8];
        attr[1] = maxMessages;
        attr[2] = messageSize;
        fixed (byte* path = FileDescriptor.NullTerminated(Bare(name)))
        {
            return new FileDescriptor((int)Checked($"mq_open(O_CREAT) of {name} ({maxMessages} messages of {messageSize} bytes)",
                Syscall.Raw(SystemCall.MqOpen, (ulong)path, (ulong)(flags | O.CREAT | O.EXCL | O.CLOEXEC), mode, (ulong)attr)));
        }
    }

    public static void Unlink(string name)
    {
        fixed (byte* path = FileDescriptor.NullTerminated(Bare(name)))
        {
            Checked($"mq_unlink of {name}", Syscall.Raw(SystemCall.MqUnlink, (ulong)path));
        }
    }

    public static MqueueAttributes Attributes(FileDescriptor queue)
    {
        long* attr = stackalloc long[8];
        Checked("mq_getsetattr", Syscall.Raw(SystemCall.MqGetsetattr, (ulong)queue.Value, 0, (ulong)attr));
        return new MqueueAttributes(attr[0], attr[1], attr[2], attr[3]);
    }

    /// <summary>Takes the next message (highest priority, oldest first) from a non-blocking descriptor; null when the queue is empty.</summary>
    public static (byte[] Data, uint Priority)? Receive(FileDescriptor queue, long messageSize)
    {
        var buffer = new byte[messageSize];
        uint priority;
        fixed (byte* data = buffer)
        {
            long size = Syscall.Raw(SystemCall.MqTimedreceive, (ulong)queue.Value, (ulong)data, (ulong)buffer.Length, (ulong)&priority, 0);
            if (size == -Errno.EAGAIN)
            {
                return null;
            }
            return (buffer.AsSpan(0, (int)Checked("mq_timedreceive", size)).ToArray(), priority);
        }
    }

    /// <summary>Queues a message on a non-blocking descriptor (a full queue is an error, not a wait).</summary>
    public static void Send(FileDescriptor queue, ReadOnlySpan<byte> message, uint priority)
    {
        fixed (byte* data = message)
        {
            Checked($"mq_timedsend of a message of {message.Length} bytes, priority {priority}",
                Syscall.Raw(SystemCall.MqTimedsend, (ulong)queue.Value, (ulong)data, (ulong)message.Length, priority, 0));
        }
    }

    // The system calls take the name without its leading slash (the C library strips it).
    private static string Bare(string name) => name.TrimStart('/');

    private static long Checked(string what, long result) =>
        result < 0 && result > -4096 ? throw new NativeException(what, (int)-result) : result;
}
