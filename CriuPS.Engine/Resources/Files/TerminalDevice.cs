using CriuPS.Engine.Images.Proto;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Resources.Files;

/// <summary>What a terminal device is, told by its device number.</summary>
internal enum TerminalRole
{
    /// <summary>The master of a pseudo-terminal pair (/dev/ptmx opened, 5:2; or a legacy UNIX98 master major).</summary>
    PtyMaster,

    /// <summary>The slave of a pseudo-terminal pair, /dev/pts/N.</summary>
    PtySlave,

    /// <summary>/dev/tty (5:0): whatever terminal controls the process that opened it.</summary>
    ControllingTerminal,

    /// <summary>/dev/console (5:1).</summary>
    Console,

    /// <summary>A virtual console /dev/ttyN (4:1-63).</summary>
    VirtualConsole,

    /// <summary>A serial line and any other terminal.</summary>
    Serial,
}

/// <summary>
/// A terminal device and the tty_info id CRIU gives it (tty.c's tty_gen_id): both ends of pseudo-terminal N share
/// index N, the slave with id 2N and the master with 2N + 1; the other kinds have fixed indexes (console 1002, virtual
/// console 1004, /dev/tty 1006, serial 1010), so that one image holds one entry for each.
/// </summary>
internal sealed record TerminalDevice(TerminalRole Role, int Index)
{
    private const uint TtyMajor = 4, TtyAuxMajor = 5;
    private const uint PtyMasterFirstMajor = 128, PtyMasterLastMajor = 135, PtySlaveFirstMajor = 136, PtySlaveLastMajor = 143;
    private const int ConsoleIndex = 1002, VirtualConsoleIndex = 1004, ControllingTerminalIndex = 1006, SerialIndex = 1010;

    /// <summary>
    /// Beyond CRIU's table of terminals (its MAX_TTYS is 1088): the ids of /dev/tty in a second, third... session of the
    /// image. CRIU keeps one /dev/tty entry per image and so cannot restore those.
    /// </summary>
    private const uint FurtherControllingTerminalIds = 2 * 1088 + 2;

    /// <summary>The highest pseudo-terminal index CRIU accepts (tty.c's MAX_PTY_INDEX).</summary>
    public const int MaxPtyIndex = 1000;

    public bool IsPty => Role is TerminalRole.PtyMaster or TerminalRole.PtySlave;

    /// <summary>Whether a descriptor with this status is a terminal.</summary>
    public static bool IsTerminal(FileStatus status) => status.Type == FileStatus.CharDevice && RoleOf(status) is not null;

    /// <summary>The device of a terminal; a master's index is asked of the master (TIOCGPTN) by <paramref name="masterIndex"/>.</summary>
    public static TerminalDevice Of(FileStatus status, Func<int> masterIndex)
    {
        var role = RoleOf(status) ?? throw new ArgumentException($"device {status.RawDeviceMajor}:{status.RawDeviceMinor} is no terminal", nameof(status));
        int index = role switch
        {
            TerminalRole.PtyMaster => masterIndex(),
            TerminalRole.PtySlave => SlaveIndex(status.RawDeviceMajor, status.RawDeviceMinor),
            TerminalRole.ControllingTerminal => ControllingTerminalIndex,
            TerminalRole.Console => ConsoleIndex,
            TerminalRole.VirtualConsole => VirtualConsoleIndex,
            _ => SerialIndex,
        };
        return new TerminalDevice(role, index);
    }

    /// <summary>The pseudo-terminal slave a controlling-terminal number (tty_nr of /proc/PID/stat) names, or null for none or another kind.</summary>
    public static int? SlaveIndexOfControllingTerminal(int ttyNumber)
    {
        uint major = (uint)(ttyNumber >> 8) & 0xfff;
        uint minor = (uint)(ttyNumber & 0xff) | ((uint)(ttyNumber >> 12) & 0xfff00);
        return ttyNumber != 0 && major is >= PtySlaveFirstMajor and <= PtySlaveLastMajor ? SlaveIndex(major, minor) : null;
    }

    private static int SlaveIndex(uint major, uint minor) => (int)((major - PtySlaveFirstMajor) * 256 + minor);

    private static TerminalRole? RoleOf(FileStatus status)
    {
        uint major = status.RawDeviceMajor;
        uint minor = status.RawDeviceMinor;
        return major switch
        {
            TtyAuxMajor when minor == 0 => TerminalRole.ControllingTerminal,
            TtyAuxMajor when minor == 1 => TerminalRole.Console,
            TtyAuxMajor when minor == 2 => TerminalRole.PtyMaster,
            >= PtyMasterFirstMajor and <= PtyMasterLastMajor => TerminalRole.PtyMaster,
            >= PtySlaveFirstMajor and <= PtySlaveLastMajor => TerminalRole.PtySlave,
            TtyMajor when minor is >= 1 and <= 63 => TerminalRole.VirtualConsole,
            TtyMajor => TerminalRole.Serial,
            _ => null,
        };
    }

    /// <summary>CRIU's tty_info id of this device.</summary>
    public uint InfoId => (uint)(Index << 1) + (Role == TerminalRole.PtyMaster ? 1u : 0u);

    /// <summary>The tty_info id of /dev/tty for the <paramref name="nth"/> session of an image (counting from 0).</summary>
    public static uint ControllingTerminalInfoId(int nth) =>
        nth == 0 ? (uint)(ControllingTerminalIndex << 1) : FurtherControllingTerminalIds + 2 * (uint)(nth - 1);

    /// <summary>The tty_info id of the master of pseudo-terminal <paramref name="index"/>.</summary>
    public static uint MasterInfoId(int index) => (uint)(index << 1) + 1;

    /// <summary>The tty_info id of the slave of pseudo-terminal <paramref name="index"/>.</summary>
    public static uint SlaveInfoId(int index) => (uint)(index << 1);

    public TtyType Type => Role switch
    {
        TerminalRole.PtyMaster or TerminalRole.PtySlave => TtyType.Pty,
        TerminalRole.ControllingTerminal => TtyType.Ctty,
        TerminalRole.Console => TtyType.Console,
        TerminalRole.VirtualConsole => TtyType.Vt,
        _ => TtyType.Serial,
    };
}
