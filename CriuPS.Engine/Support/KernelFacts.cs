using System.Globalization;
using System.Text.RegularExpressions;

namespace CriuPS.Engine.Support;

/// <summary>What the probes read about the running kernel and our own privileges.</summary>
internal static partial class KernelFacts
{
    public const int CapNetAdmin = 12, CapSysAdmin = 21, CapSysPtrace = 19, CapSysResource = 24, CapCheckpointRestore = 40;

    private static readonly string[] CapabilityNames = new string[41];

    static KernelFacts()
    {
        CapabilityNames[CapNetAdmin] = "CAP_NET_ADMIN";
        CapabilityNames[CapSysPtrace] = "CAP_SYS_PTRACE";
        CapabilityNames[CapSysAdmin] = "CAP_SYS_ADMIN";
        CapabilityNames[CapSysResource] = "CAP_SYS_RESOURCE";
        CapabilityNames[CapCheckpointRestore] = "CAP_CHECKPOINT_RESTORE";
    }

    /// <summary>"6.18.44-fc" as uname -r says.</summary>
    public static string Release => File.ReadAllText("/proc/sys/kernel/osrelease").Trim();

    /// <summary>The kernel version (6.18.44), from the release string.</summary>
    public static Version Version
    {
        get
        {
            var match = VersionPattern().Match(Release);
            return match.Success
                ? new Version(int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture),
                    match.Groups[3].Success ? int.Parse(match.Groups[3].Value, CultureInfo.InvariantCulture) : 0)
                : new Version(0, 0);
        }
    }

    /// <summary>Whether this process has the capability in its effective set (CapEff of /proc/self/status).</summary>
    public static bool HasCapability(int capability)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
        ulong effective = ulong.Parse(line["CapEff:".Length..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        return (effective & (1UL << capability)) != 0;
    }

    /// <summary>"CAP_SYS_ADMIN effective" or "CAP_SYS_ADMIN not effective".</summary>
    public static string DescribeCapability(int capability) =>
        $"{CapabilityNames[capability]} {(HasCapability(capability) ? "effective" : "not effective")}";

    [GeneratedRegex(@"^(\d+)\.(\d+)(?:\.(\d+))?")]
    private static partial Regex VersionPattern();
}
