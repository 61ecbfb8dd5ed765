using System.Text;

namespace CriuPS.Native.Proc;

/// <summary>The Linux capabilities by number (include/uapi/linux/capability.h).</summary>
public enum Capability
{
    Chown = 0,
    DacOverride = 1,
    DacReadSearch = 2,
    Fowner = 3,
    Fsetid = 4,
    Kill = 5,
    Setgid = 6,
    Setuid = 7,
    Setpcap = 8,
    LinuxImmutable = 9,
    NetBindService = 10,
    NetBroadcast = 11,
    NetAdmin = 12,
    NetRaw = 13,
    IpcLock = 14,
    IpcOwner = 15,
    SysModule = 16,
    SysRawio = 17,
    SysChroot = 18,
    SysPtrace = 19,
    SysPacct = 20,
    SysAdmin = 21,
    SysBoot = 22,
    SysNice = 23,
    SysResource = 24,
    SysTime = 25,
    SysTtyConfig = 26,
    Mknod = 27,
    Lease = 28,
    AuditWrite = 29,
    AuditControl = 30,
    Setfcap = 31,
    MacOverride = 32,
    MacAdmin = 33,
    Syslog = 34,
    WakeAlarm = 35,
    BlockSuspend = 36,
    AuditRead = 37,
    Perfmon = 38,
    Bpf = 39,
    CheckpointRestore = 40,
}

/// <summary>Capability sets as /proc/PID/status shows them (CapEff, CapPrm...: one bit per capability), and the kernel's names.</summary>
public static class Capabilities
{
    /// <summary>The kernel's name: CAP_SYS_PTRACE for <see cref="Capability.SysPtrace"/>.</summary>
    public static string KernelName(this Capability capability)
    {
        var name = new StringBuilder("CAP");
        foreach (char c in capability.ToString())
        {
            if (char.IsUpper(c))
            {
                name.Append('_');
            }
            name.Append(char.ToUpperInvariant(c));
        }
        return name.ToString();
    }

    public static bool In(this Capability capability, ulong set) => (set & Bit(capability)) != 0;

    public static ulong Bit(this Capability capability) => 1UL << (int)capability;

    /// <summary>The capabilities of a set by their kernel names ("CAP_SETUID, CAP_SYS_ADMIN"), numbers beyond the known ones as "capability 41".</summary>
    public static string Describe(ulong set)
    {
        var names = new List<string>();
        for (int bit = 0; bit < 64; bit++)
        {
            if ((set & (1UL << bit)) != 0)
            {
                names.Add(Enum.IsDefined((Capability)bit) ? ((Capability)bit).KernelName() : $"capability {bit}");
            }
        }
        return names.Count == 0 ? "none" : string.Join(", ", names);
    }
}
