using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// An owned file descriptor of this process, closed on dispose, or by the finalizer when a path forgot to dispose
/// it, so that a missed dispose cannot leak it. Whoever hands the number on keeps the object alive for as long as
/// the number is used (a field, a using, or <see cref="Release"/> to give up ownership).
/// </summary>
public sealed unsafe class FileDescriptor : SafeHandle
{
    public FileDescriptor(int fd)
        : base(new IntPtr(-1), ownsHandle: true) => SetHandle(new IntPtr(fd));

    /// <summary>The descriptor's number, or -1 once closed or released.</summary>
    public int Value => IsClosed || IsInvalid ? -1 : (int)handle;

    public bool IsOpen => Value >= 0;

    public override bool IsInvalid => (int)handle < 0;

    public static FileDescriptor Open(string path, int flags, uint mode = 0)
    {
        var bytes = NullTerminated(path);
        fixed (byte* p = bytes)
        {
            int fd = LibC.open(p, flags | O.CLOEXEC, (ushort)mode);
            if (fd < 0)
            {
                throw new NativeException("open", LibC.errno, path);
            }
            return new FileDescriptor(fd);
        }
    }

    /// <summary>Like <see cref="Open"/>, but returns null (and the errno) instead of throwing.</summary>
    public static FileDescriptor? TryOpen(string path, int flags, out int errno, uint mode = 0)
    {
        var bytes = NullTerminated(path);
        fixed (byte* p = bytes)
        {
            int fd = LibC.open(p, flags | O.CLOEXEC, (ushort)mode);
            errno = fd < 0 ? LibC.errno : 0;
            return fd < 0 ? null : new FileDescriptor(fd);
        }
    }

    /// <summary>pipe2(2): a new pipe's read and write ends, with <paramref name="flags"/> (O_CLOEXEC, O_NONBLOCK).</summary>
    public static (FileDescriptor Read, FileDescriptor Write) Pipe(int flags)
    {
        int* ends = stackalloc int[2];
        if (LibC.pipe2(ends, flags) != 0)
        {
            throw new NativeException("pipe2", LibC.errno);
        }
        return (new FileDescriptor(ends[0]), new FileDescriptor(ends[1]));
    }

    /// <summary>One read(2) into <paramref name="buffer"/>: the bytes read (0 at the end), or minus the errno.</summary>
    public long TryRead(Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            long n = (long)LibC.read(Value, p, (size_t)(ulong)buffer.Length);
            return n < 0 ? -LibC.errno : n;
        }
    }

    /// <summary>One write(2) of <paramref name="data"/>: the bytes written, or minus the errno.</summary>
    public long TryWrite(ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            long n = (long)LibC.write(Value, p, (size_t)(ulong)data.Length);
            return n < 0 ? -LibC.errno : n;
        }
    }

    /// <summary>Gives up ownership: the caller closes the descriptor.</summary>
    public int Release()
    {
        int fd = Value;
        SetHandleAsInvalid();
        return fd;
    }

    protected override bool ReleaseHandle() => LibC.close((int)handle) == 0;

    public static byte[] NullTerminated(string text)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(text) + 1];
        Encoding.UTF8.GetBytes(text, bytes);
        return bytes;
    }

    public override string ToString() => $"fd {Value}";
}
