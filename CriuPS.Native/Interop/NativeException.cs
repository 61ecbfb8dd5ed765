namespace CriuPS.Native.Interop;

/// <summary>A system call failed. Carries the errno and the call's name so that errors say what failed.</summary>
public class NativeException : Exception
{
    public NativeException(string call, int errno)
        : base($"{call} failed: {Interop.Errno.Describe(errno)}")
    {
        Call = call;
        Errno = errno;
    }

    public NativeException(string call, int errno, string detail)
        : base($"{call} failed ({detail}): {Interop.Errno.Describe(errno)}")
    {
        Call = call;
        Errno = errno;
    }

    public string Call { get; }

    public int Errno { get; }
}
