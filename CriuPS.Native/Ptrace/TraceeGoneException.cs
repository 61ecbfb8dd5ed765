using CriuPS.Native.Interop;

namespace CriuPS.Native.Ptrace;

/// <summary>A traced thread exited or was killed while we were working on it.</summary>
public sealed class TraceeGoneException : Exception
{
    public TraceeGoneException(int tid, WaitStatus status)
        : base($"thread {tid} is gone: {status}")
    {
        Tid = tid;
        Status = status;
    }

    public int Tid { get; }

    public WaitStatus Status { get; }
}
