using System.Runtime.InteropServices;

namespace CriuPS.Native.Interop;

/// <summary>struct flock of x86-64: one byte range of a record lock (length 0: up to the end of the file, however far it grows).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct RecordLock
{
    public short Type;
    public short Whence;
    public long Start;
    public long Length;
    public int Pid;
}
