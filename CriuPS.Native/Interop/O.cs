namespace CriuPS.Native.Interop;

// Tmds.LibC has these as LibC.O_* static properties; these are constants because `const` flag sets
// (StatusFlags.Changeable, the files' CreationFlags) and switch arms use them; LARGEFILE is the kernel's 0x8000, which
// fdinfo shows (glibc's is 0 on 64-bit). NativeConstantsTests checks every one
// against Tmds.LibC's value, so the two cannot drift apart.
/// <summary>open(2) flags (x86-64 values).</summary>
public static class O
{
    public const int RDONLY = 0, WRONLY = 1, RDWR = 2, ACCMODE = 3;
    public const int CREAT = 0x40, EXCL = 0x80, NOCTTY = 0x100, TRUNC = 0x200, APPEND = 0x400, NONBLOCK = 0x800;
    public const int DSYNC = 0x1000, ASYNC = 0x2000, DIRECT = 0x4000, LARGEFILE = 0x8000, DIRECTORY = 0x10000;
    public const int NOFOLLOW = 0x20000, NOATIME = 0x40000, CLOEXEC = 0x80000, PATH = 0x200000, TMPFILE = 0x410000;
}
