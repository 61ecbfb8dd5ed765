using System.Runtime.InteropServices;

namespace CriuPS.Native.Interop;

/// <summary>struct timespec of x86-64 as system calls read and write it in a process's memory: seconds, nanoseconds.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct KernelTimespec(long Seconds, long Nanoseconds)
{
    public const long NanosecondsPerSecond = 1_000_000_000;

    public long TotalNanoseconds => Seconds * NanosecondsPerSecond + Nanoseconds;

    public static KernelTimespec FromNanoseconds(long nanoseconds) => new(nanoseconds / NanosecondsPerSecond, nanoseconds % NanosecondsPerSecond);
}
