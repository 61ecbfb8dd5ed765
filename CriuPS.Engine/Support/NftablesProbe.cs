using CriuPS.Engine.Privileges;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Support;

/// <summary>
/// Asks nf_tables for its ruleset generation over NETLINK_NETFILTER. Where the kernel loads modules, a request to a
/// subsystem that is not loaded would load it: the probe then only reports that it is not loaded, and loads nothing.
/// </summary>
internal sealed class NftablesProbe : FeatureProbe
{
    private const int NetlinkNetfilter = 12;
    private const ushort NfnlSubsysNftables = 10, NftMsgGetgen = 16, NftMsgNewgen = 15;
    private const ushort NlmFRequest = 1;
    private const string Modules = "/proc/modules";

    public override string Name => "Nftables";

    public override bool Essential => false;

    public override string Requirement => "nf_tables (Linux 3.13+) reachable over netlink (NETLINK_NETFILTER), and CAP_NET_ADMIN to change rules";

    public override string Impact => "Network traffic of the checkpointed processes cannot be locked with nftables while they are saved or restored; this matters only for processes with TCP connections.";

    public override (bool, string) Check()
    {
        if (File.Exists(Modules) && !Loaded("nf_tables") && !Directory.Exists("/sys/module/nf_tables"))
        {
            return (false, "the nf_tables module is not loaded (the probe does not load it)");
        }
        // struct nfgenmsg: family AF_UNSPEC, version NFNETLINK_V0, resource id 0.
        var answer = Sockets.NetlinkRequest(NetlinkNetfilter, (NfnlSubsysNftables << 8) | NftMsgGetgen, NlmFRequest, [0, 0, 0, 0], TimeSpan.FromSeconds(2));
        return answer.ReplyType == ((NfnlSubsysNftables << 8) | NftMsgNewgen)
            ? (true, $"nf_tables answered a ruleset generation request; {SessionPrivileges.Current().Describe(Capability.NetAdmin)}")
            : (false, answer.Errno != 0 ? $"{answer.FailedCall} failed: {Errno.Describe(answer.Errno)}" : $"unexpected netlink reply of type 0x{answer.ReplyType:x}");
    }

    private static bool Loaded(string module) =>
        File.ReadLines(Modules).Any(line => line.StartsWith(module + " ", StringComparison.Ordinal));
}
