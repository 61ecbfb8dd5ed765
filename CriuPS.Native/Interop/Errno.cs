using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// errno values and their names. Tmds.LibC has them too, but as static properties, not constants: a case pattern
/// (`case Errno.EINTR:`, `when error is Errno.EAGAIN`) needs a constant, hence these (and <see cref="Signals"/>).
/// </summary>
public static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int ESRCH = 3;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int ENXIO = 6;
    public const int EBADF = 9;
    public const int ECHILD = 10;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EFAULT = 14;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int ENODEV = 19;
    public const int ENOTDIR = 20;
    public const int EINVAL = 22;
    public const int ENOTTY = 25;
    public const int ENOSPC = 28;
    public const int ESPIPE = 29;
    public const int ERANGE = 34;
    public const int ENOSYS = 38;
    public const int EIDRM = 43;
    public const int ENOTEMPTY = 39;
    public const int EOPNOTSUPP = 95;
    public const int EADDRINUSE = 98;
    public const int EADDRNOTAVAIL = 99;
    public const int ENOTCONN = 107;
    public const int EINPROGRESS = 115;
    public const int ESTALE = 116;

    /// <summary>Kernel-internal restart codes a thread interrupted in a system call shows in rax.</summary>
    public const int ERESTARTSYS = 512;
    public const int ERESTARTNOINTR = 513;
    public const int ERESTARTNOHAND = 514;
    public const int ERESTART_RESTARTBLOCK = 516;

    public static int Last => LibC.errno;

    public static unsafe string Describe(int errno)
    {
        byte* buffer = stackalloc byte[256];
        // Tmds binds the XSI strerror_r: it fills the buffer and returns 0.
        var text = LibC.strerror_r(errno, buffer, 256) == 0 ? new string((sbyte*)buffer) : $"errno {errno}";
        return $"{text} (errno {errno})";
    }
}
