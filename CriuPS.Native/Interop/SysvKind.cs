namespace CriuPS.Native.Interop;

/// <summary>The three kinds of System V IPC object.</summary>
public enum SysvKind
{
    SharedMemory,
    Semaphores,
    MessageQueue,
}
