using System.Text;

namespace CriuPS.Native.Proc;

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
