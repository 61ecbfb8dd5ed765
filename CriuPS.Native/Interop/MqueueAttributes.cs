namespace CriuPS.Native.Interop;

/// <summary>The attributes of a POSIX message queue (struct mq_attr): the description's flags and the queue's limits and count.</summary>
public readonly record struct MqueueAttributes(long Flags, long MaxMessages, long MessageSize, long CurrentMessages);
