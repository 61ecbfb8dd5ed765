using System.Net;
using System.Text;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Privileges;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>One TCP connection to lock: where its socket lives and its two ends as that socket sees them.</summary>
internal sealed record LockedConnection(NetworkNamespace Namespace, IPEndPoint Local, IPEndPoint Remote)
{
    public override string ToString() => $"{Local} to {Remote}";
}

/// <summary>
/// The network lock: while saved TCP connections are frozen, killed and rebuilt, every packet of theirs is dropped,
/// both ways, so that neither end sees a reset (a peer that gets no answer retransmits until the connection is back).
/// It is CRIU's nftables lock, with CRIU's names: a table "inet CRIU-&lt;dump_criu_run_id&gt;" (cut to CRIU's 31
/// characters) in the network namespace of the sockets, whose input and output chains drop packets matching the sets
/// conns4 and conns6 of (source address, source port, destination address, destination port), and let through
/// packets marked 0xc114 (SOCCR_MARK). Engaging replaces any table of that name atomically (a leftover of an earlier
/// run is no error); releasing deletes it, and a table already gone is no error either.
/// </summary>
internal sealed class NetworkLock
{
    /// <summary>inventory network_lock_method: CRIU's NETWORK_LOCK_NFTABLES.</summary>
    public const uint MethodNftables = 1;

    /// <summary>
    /// inventory network_lock_method: CRIU's NETWORK_LOCK_SKIP, for a dump that locked nothing. Told "nftables", CRIU's
    /// restore deletes the table of the dump's run id whatever it restored, and reports the table missing as an error.
    /// </summary>
    public const uint MethodSkip = 2;

    // CRIU writes "inet CRIU-<id>" into 32 bytes: the table name keeps what fits.
    private const int CriuTableSpecLength = 31;

    private readonly string table;
    private readonly List<NetworkNamespace> namespaces = new();

    private NetworkLock(string table) => this.table = table;

    /// <summary>The table CRIU would use for a dump with this run id.</summary>
    public static string TableName(string runId)
    {
        var name = "CRIU-" + runId;
        return name.Length > CriuTableSpecLength - "inet ".Length ? name[..(CriuTableSpecLength - "inet ".Length)] : name;
    }

    /// <summary>Drops the packets of every connection, in the namespaces of their sockets, from now on.</summary>
    /// <param name="failure">DumpFailed or RestoreFailed: what a refusal by nftables is reported as.</param>
    public static NetworkLock Engage(string runId, IReadOnlyCollection<LockedConnection> connections, CheckpointErrorKind failure)
    {
        CheckPrivilege(connections.Count, string.Join(", ", connections), TableName(runId));
        var locked = new NetworkLock(TableName(runId));
        try
        {
            foreach (var group in connections.GroupBy(c => c.Namespace.Inode))
            {
                var ns = group.First().Namespace;
                using (ns.Enter())
                {
                    Nftables.Run(locked.Ruleset(group));
                }
                locked.namespaces.Add(ns.Duplicate());
            }
        }
        catch (NftablesException e)
        {
            locked.Release();
            throw new CheckpointException(failure,
                $"The network could not be locked for {connections.Count} TCP connection(s) ({string.Join(", ", connections)}): {e.Message}.", locked.table, null, e);
        }
        return locked;
    }

    /// <summary>Refuses a session without CAP_NET_ADMIN, which nftables and TCP repair mode need, naming the connections.</summary>
    public static void CheckPrivilege(int count, string connections, object target)
    {
        if (!SessionPrivileges.Current().Has(Capability.NetAdmin))
        {
            throw MissingPrivilege.For(Capability.NetAdmin,
                $"Saving or restoring {count} established TCP connection(s) ({connections}), in TCP repair mode and with an nftables table that holds "
                + "their packets,", target);
        }
    }

    /// <summary>The nft table's name, as the log and messages show it.</summary>
    public string Table => $"inet {table}";

    /// <summary>Lets the packets through again: the table is deleted in every namespace it was set in.</summary>
    /// <exception cref="NftablesException">A table could not be deleted (the others still are).</exception>
    public void Release()
    {
        NftablesException? failed = null;
        foreach (var ns in namespaces)
        {
            try
            {
                using (ns.Enter())
                {
                    Nftables.Run($"add table inet {table}\ndelete table inet {table}\n");
                }
            }
            catch (NftablesException e)
            {
                failed ??= e;
            }
            finally
            {
                ns.Dispose();
            }
        }
        namespaces.Clear();
        if (failed is not null)
        {
            throw failed;
        }
    }

    // One transaction: whatever table had this name goes, and the new one comes with its sets filled.
    private string Ruleset(IEnumerable<LockedConnection> connections)
    {
        var v4 = new SortedSet<string>(StringComparer.Ordinal);
        var v6 = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var connection in connections)
        {
            var (local, remote) = (InetImageAddress.Unmapped(connection.Local), InetImageAddress.Unmapped(connection.Remote));
            var set = local.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? v4 : v6;
            set.Add(Element(remote, local));
            set.Add(Element(local, remote));
        }
        var text = new StringBuilder();
        text.Append($"add table inet {table}\ndelete table inet {table}\ntable inet {table} {{\n");
        text.Append($"\tset conns4 {{ type ipv4_addr . inet_service . ipv4_addr . inet_service; {Elements(v4)}}}\n");
        text.Append($"\tset conns6 {{ type ipv6_addr . inet_service . ipv6_addr . inet_service; {Elements(v6)}}}\n");
        foreach (var chain in new[] { "output", "input" })
        {
            text.Append($"\tchain {chain} {{ type filter hook {chain} priority 0; meta mark 0x{TcpPeerSegment.SoccrMark:x} accept; ");
            text.Append("ip saddr . tcp sport . ip daddr . tcp dport @conns4 drop; ip6 saddr . tcp sport . ip6 daddr . tcp dport @conns6 drop; }\n");
        }
        text.Append("}\n");
        return text.ToString();
    }

    private static string Elements(SortedSet<string> elements) => elements.Count == 0 ? "" : $"elements = {{ {string.Join(", ", elements)} }} ";

    // Addresses without an IPv6 scope (nft has no syntax for it): the scope does not change which packets match.
    private static string Element(IPEndPoint source, IPEndPoint destination) =>
        $"{new IPAddress(source.Address.GetAddressBytes())} . {source.Port} . {new IPAddress(destination.Address.GetAddressBytes())} . {destination.Port}";
}
