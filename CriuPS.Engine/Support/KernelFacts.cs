using System.Globalization;
using System.Text.RegularExpressions;

namespace CriuPS.Engine.Support;

/// <summary>What the probes read about the running kernel (our own privileges: <see cref="Privileges.SessionPrivileges"/>).</summary>
internal static partial class KernelFacts
{
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

    /// <summary>fs.nr_open: no process of this kernel has a descriptor number this high or higher.</summary>
    public static uint NrOpen => uint.Parse(File.ReadAllText("/proc/sys/fs/nr_open").Trim(), CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^(\d+)\.(\d+)(?:\.(\d+))?")]
    private static partial Regex VersionPattern();
}
