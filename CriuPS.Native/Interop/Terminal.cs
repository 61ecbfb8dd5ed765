using Tmds.Linux;

namespace CriuPS.Native.Interop;

/// <summary>
/// The terminal ioctls (ioctl_tty(2)) on descriptors of this process: settings, window size, the state of a
/// pseudo-terminal pair, its session and foreground group, and the input queue.
/// </summary>
public static unsafe class Terminal
{
    /// <summary>The number of control characters the kernel's struct termios holds (c_cc of TCGETS/TCSETS).</summary>
    public const int ControlCharacters = 19;

    /// <summary>The requests a restored process runs itself (injected): take the terminal as its controlling one (TIOCSCTTY)...</summary>
    public static int SetControllingTerminalRequest => LibC.TIOCSCTTY;

    /// <summary>... and give it its foreground process group (TIOCSPGRP).</summary>
    public static int SetForegroundGroupRequest => LibC.TIOCSPGRP;

    /// <summary>isatty(3): whether descriptor <paramref name="fd"/> of this process is a terminal.</summary>
    public static bool IsTerminal(int fd) => LibC.isatty(fd) == 1;

    /// <summary>TCGETS.</summary>
    public static termios GetAttributes(FileDescriptor tty) => GetTermios(tty, LibC.TCGETS, "TCGETS");

    /// <summary>TCSETS: the settings take effect at once; queued input and output stay.</summary>
    public static void SetAttributes(FileDescriptor tty, termios settings) => Call(tty, LibC.TCSETS, &settings, "TCSETS");

    /// <summary>TIOCGLCKTRMIOS: the settings bits no one may change (a set bit in the locked termios is locked).</summary>
    public static termios GetLockedAttributes(FileDescriptor tty) => GetTermios(tty, LibC.TIOCGLCKTRMIOS, "TIOCGLCKTRMIOS");

    /// <summary>TIOCSLCKTRMIOS (needs CAP_SYS_ADMIN).</summary>
    public static void SetLockedAttributes(FileDescriptor tty, termios locked) => Call(tty, LibC.TIOCSLCKTRMIOS, &locked, "TIOCSLCKTRMIOS");

    public static winsize GetWindowSize(FileDescriptor tty)
    {
        winsize size;
        Call(tty, LibC.TIOCGWINSZ, &size, "TIOCGWINSZ");
        return size;
    }

    /// <summary>TIOCSWINSZ: on a pseudo-terminal both ends share the size, and a change signals SIGWINCH to the foreground group.</summary>
    public static void SetWindowSize(FileDescriptor tty, winsize size) => Call(tty, LibC.TIOCSWINSZ, &size, "TIOCSWINSZ");

    /// <summary>
    /// TIOCGDEV: the device number of the terminal behind the descriptor, encoded as tty_nr of /proc/PID/stat; for
    /// /dev/tty, that of the terminal it was opened on.
    /// </summary>
    public static int RealDevice(FileDescriptor tty) => GetInt(tty, LibC.TIOCGDEV, "TIOCGDEV");

    /// <summary>TIOCGPTN: the index N of the pair a master belongs to (its slave is /dev/pts/N).</summary>
    public static int PtyNumber(FileDescriptor master) => GetInt(master, LibC.TIOCGPTN, "TIOCGPTN");

    /// <summary>TIOCGPTLCK: whether the slave of a master is locked (a new master's is, until unlockpt).</summary>
    public static bool IsPtyLocked(FileDescriptor master) => GetInt(master, LibC.TIOCGPTLCK, "TIOCGPTLCK") != 0;

    /// <summary>TIOCSPTLCK: locks or unlocks the slave (a locked slave cannot be opened).</summary>
    public static void SetPtyLock(FileDescriptor master, bool locked) => SetInt(master, LibC.TIOCSPTLCK, locked ? 1 : 0, "TIOCSPTLCK");

    /// <summary>TIOCGPKT: whether reads of the master come in packet mode (a status byte first).</summary>
    public static bool IsPacketMode(FileDescriptor master) => GetInt(master, LibC.TIOCGPKT, "TIOCGPKT") != 0;

    /// <summary>TIOCPKT.</summary>
    public static void SetPacketMode(FileDescriptor master, bool on) => SetInt(master, LibC.TIOCPKT, on ? 1 : 0, "TIOCPKT");

    /// <summary>TIOCGEXCL: whether the terminal is in exclusive mode (only CAP_SYS_ADMIN may open it again).</summary>
    public static bool IsExclusive(FileDescriptor tty) => GetInt(tty, LibC.TIOCGEXCL, "TIOCGEXCL") != 0;

    /// <summary>TIOCEXCL or TIOCNXCL.</summary>
    public static void SetExclusive(FileDescriptor tty, bool on)
    {
        if (LibC.ioctl(tty.Value, on ? LibC.TIOCEXCL : LibC.TIOCNXCL) != 0)
        {
            throw new NativeException(on ? "ioctl(TIOCEXCL)" : "ioctl(TIOCNXCL)", LibC.errno);
        }
    }

    /// <summary>
    /// TIOCGSID: the session the terminal controls, or 0 when it is no session's controlling terminal. Through a master
    /// it tells its slave's session to anyone; through any other terminal only to a process it controls.
    /// </summary>
    public static int Session(FileDescriptor tty) => GetIntOrZeroIfNotControlling(tty, LibC.TIOCGSID, "TIOCGSID");

    /// <summary>
    /// FIONREAD: the bytes of input the line discipline holds for a reader (in canonical mode, those of complete lines
    /// only). Input the other end wrote a moment ago may still be on its way to the line discipline.
    /// </summary>
    public static int QueuedInput(FileDescriptor tty) => GetInt(tty, LibC.FIONREAD, "FIONREAD");

    /// <summary>
    /// TIOCSTI, byte by byte: each goes through the line discipline at once, as if it had arrived from the other end,
    /// under the settings in force (so echo, signals and canonical editing apply). Needs CAP_SYS_ADMIN for a terminal
    /// that is not the caller's controlling terminal.
    /// </summary>
    public static void InsertInput(FileDescriptor tty, ReadOnlySpan<byte> bytes)
    {
        fixed (byte* p = bytes)
        {
            for (int i = 0; i < bytes.Length; i++)
            {
                if (LibC.ioctl(tty.Value, LibC.TIOCSTI, p + i) != 0)
                {
                    throw new NativeException("ioctl(TIOCSTI)", LibC.errno, $"byte {i} of {bytes.Length}");
                }
            }
        }
    }

    private static termios GetTermios(FileDescriptor tty, int request, string name)
    {
        termios settings = default;
        Call(tty, request, &settings, name);
        return settings;
    }

    private static int GetInt(FileDescriptor tty, int request, string name)
    {
        int value = 0;
        Call(tty, request, &value, name);
        return value;
    }

    private static int GetIntOrZeroIfNotControlling(FileDescriptor tty, int request, string name)
    {
        int value = 0;
        if (LibC.ioctl(tty.Value, request, &value) == 0)
        {
            return value;
        }
        int errno = LibC.errno;
        return errno == Errno.ENOTTY ? 0 : throw new NativeException($"ioctl({name})", errno);
    }

    private static void SetInt(FileDescriptor tty, int request, int value, string name) => Call(tty, request, &value, name);

    private static void Call(FileDescriptor tty, int request, void* argument, string name)
    {
        if (LibC.ioctl(tty.Value, request, argument) != 0)
        {
            throw new NativeException($"ioctl({name})", LibC.errno);
        }
    }
}
