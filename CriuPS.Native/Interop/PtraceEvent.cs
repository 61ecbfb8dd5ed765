namespace CriuPS.Native.Interop;

/// <summary>Event codes reported in bits 16..23 of a wait status.</summary>
public enum PtraceEvent
{
    None = 0,
    Fork = 1,
    VFork = 2,
    Clone = 3,
    Exec = 4,
    VForkDone = 5,
    Exit = 6,
    Seccomp = 7,
    Stop = 128,
}
