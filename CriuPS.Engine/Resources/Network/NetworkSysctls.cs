using System.Globalization;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;

namespace CriuPS.Engine.Resources.Network;

/// <summary>
/// The sysctls of a network namespace that CRIU saves (criu/net.c): the IPv4 and IPv6 settings of each device and of
/// "all" and "default" (net.ipv4.conf.*, net.ipv6.conf.*), net.unix.max_dgram_qlen and net.ipv4.ping_group_range, in
/// CRIU's order, so that an entry's position names it. /proc/sys/net shows the namespace of the thread that opens a file
/// there: the caller must be inside the namespace. Other namespace sysctls (net.ipv4.ip_default_ttl, tcp_*...) CRIU
/// does not save, nor does CriuPS: a restored namespace has the kernel's defaults for them.
/// </summary>
internal static class NetworkSysctls
{
    private static readonly string[] Ipv4Device =
    [
        "accept_local", "accept_redirects", "accept_source_route", "arp_accept", "arp_announce", "arp_filter", "arp_ignore", "arp_notify",
        "bootp_relay", "disable_policy", "disable_xfrm", "force_igmp_version", "forwarding", "igmpv2_unsolicited_report_interval",
        "igmpv3_unsolicited_report_interval", "log_martians", "medium_id", "promote_secondaries", "proxy_arp", "proxy_arp_pvlan",
        "route_localnet", "rp_filter", "secure_redirects", "send_redirects", "shared_media", "src_valid_mark", "tag",
        "ignore_routes_with_linkdown", "drop_gratuitous_arp", "drop_unicast_in_l2_multicast",
    ];

    private static readonly string[] Ipv6Device =
    [
        "accept_dad", "accept_ra", "accept_ra_defrtr", "accept_ra_from_local", "accept_ra_min_hop_limit", "accept_ra_mtu", "accept_ra_pinfo",
        "accept_ra_rt_info_max_plen", "accept_ra_rtr_pref", "accept_redirects", "accept_source_route", "autoconf", "dad_transmits",
        "disable_ipv6", "drop_unicast_in_l2_multicast", "drop_unsolicited_na", "force_mld_version", "force_tllao", "forwarding", "hop_limit",
        "ignore_routes_with_linkdown", "keep_addr_on_down", "max_addresses", "max_desync_factor", "mldv1_unsolicited_report_interval",
        "mldv2_unsolicited_report_interval", "mtu", "ndisc_notify", "optimistic_dad", "proxy_ndp", "regen_max_retry", "router_probe_interval",
        "router_solicitation_delay", "router_solicitation_interval", "router_solicitations", "stable_secret", "suppress_frag_ndisc",
        "temp_prefered_lft", "temp_valid_lft", "use_oif_addrs_only", "use_optimistic", "use_tempaddr",
    ];

    private static readonly string[] Unix = ["max_dgram_qlen"];
    private static readonly string[] Ipv4 = ["ping_group_range"];

    // Strings among them; every other one is an integer.
    private static readonly HashSet<string> Strings = ["stable_secret", "ping_group_range"];

    /// <summary>The namespace-wide values, as CRIU's netns-ID.img holds them.</summary>
    public static NetnsEntry ReadNamespace()
    {
        var entry = new NetnsEntry();
        entry.DefConf4.AddRange(Read(Device("ipv4", "default"), Ipv4Device));
        entry.AllConf4.AddRange(Read(Device("ipv4", "all"), Ipv4Device));
        entry.DefConf6.AddRange(Read(Device("ipv6", "default"), Ipv6Device));
        entry.AllConf6.AddRange(Read(Device("ipv6", "all"), Ipv6Device));
        entry.UnixConf.AddRange(Read("/proc/sys/net/unix", Unix));
        entry.Ipv4Sysctl.AddRange(Read("/proc/sys/net/ipv4", Ipv4));
        return entry;
    }

    /// <summary>A device's IPv4 and IPv6 values into its NetDeviceEntry (conf4, conf6).</summary>
    public static void ReadDevice(NetDeviceEntry device)
    {
        device.Conf4.AddRange(Read(Device("ipv4", device.Name), Ipv4Device));
        device.Conf6.AddRange(Read(Device("ipv6", device.Name), Ipv6Device));
    }

    /// <summary>
    /// Writes the namespace-wide values: "all" first (writing it can change every device), then "default" (which devices
    /// made afterwards start from), then the others. Returns how many values changed.
    /// </summary>
    public static int WriteNamespace(NetnsEntry saved, string file) =>
        Write(Device("ipv4", "all"), Ipv4Device, saved.AllConf4, file) + Write(Device("ipv6", "all"), Ipv6Device, saved.AllConf6, file)
        + Write(Device("ipv4", "default"), Ipv4Device, saved.DefConf4, file) + Write(Device("ipv6", "default"), Ipv6Device, saved.DefConf6, file)
        + Write("/proc/sys/net/unix", Unix, saved.UnixConf, file) + Write("/proc/sys/net/ipv4", Ipv4, saved.Ipv4Sysctl, file);

    /// <summary>Writes a device's saved values; returns how many changed.</summary>
    public static int WriteDevice(NetDeviceEntry device, string file) =>
        Write(Device("ipv4", device.Name), Ipv4Device, device.Conf4, file) + Write(Device("ipv6", device.Name), Ipv6Device, device.Conf6, file);

    private static string Device(string family, string device) => $"/proc/sys/net/{family}/conf/{device}";

    // A value this kernel lacks (or, for stable_secret, one never set: reading it fails) is saved without a value, as CRIU does.
    private static IEnumerable<SysctlEntry> Read(string directory, string[] names)
    {
        foreach (var name in names)
        {
            var entry = new SysctlEntry { Type = Strings.Contains(name) ? SysctlType.CtlStr : SysctlType.Ctl32 };
            if (Value(Path.Combine(directory, name)) is { } text)
            {
                if (entry.Type == SysctlType.CtlStr)
                {
                    entry.Sarg = text;
                }
                else if (int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value))
                {
                    entry.Iarg = value;
                }
            }
            yield return entry;
        }
    }

    // Only values that differ from what the new namespace has are written (most do not), accept_redirects after
    // forwarding, which resets it (CRIU's order).
    private static int Write(string directory, string[] names, IList<SysctlEntry> saved, string file)
    {
        int changed = 0;
        var order = Enumerable.Range(0, Math.Min(names.Length, saved.Count)).OrderBy(i => names[i] == "accept_redirects" ? 1 : 0);
        foreach (int i in order)
        {
            var entry = saved[i];
            string? wanted = entry.Type == SysctlType.CtlStr ? (entry.HasSarg ? entry.Sarg : null)
                : entry.HasIarg ? entry.Iarg.ToString(CultureInfo.InvariantCulture) : null;
            var path = Path.Combine(directory, names[i]);
            var current = Value(path);
            if (wanted is null || current is null || Normal(current) == Normal(wanted))
            {
                continue;
            }
            try
            {
                File.WriteAllText(path, wanted);
                changed++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CheckpointException(CheckpointErrorKind.RestoreFailed,
                    $"{file}: the saved value '{wanted}' of {path["/proc/sys/".Length..].Replace('/', '.')} could not be set ({current} now): {e.Message}", file, null, e);
            }
        }
        return changed;
    }

    // "1\t2147483647" and "1 2147483647" are the same range.
    private static string Normal(string value) => string.Join(' ', value.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

    private static string? Value(string path)
    {
        try
        {
            return File.ReadAllText(path).TrimEnd('\n');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
