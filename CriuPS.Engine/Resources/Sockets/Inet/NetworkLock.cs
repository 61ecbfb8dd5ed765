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
/// run is no error); releasing deletes it, and a table already gone is no error either. A dump's lock is owned by the
/// dumping session (nftables' owner flag): if the session dies, the kernel lifts it, and the processes, which go on,
/// keep their connections; only once they are killed is it made to outlive the session, for the restore.
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

    // Where the lock is set: each network namespace with its connections and, for a lock owned by this session, the
    // open nftables context that owns the table there.
    private readonly List<(NetworkNamespace Namespace, List<LockedConnection> Connections, NftablesContext? Owner)> places = new();

    private NetworkLock(string table) => this.table = table;

    /// <summary>The table CRIU would use for a dump with this run id.</summary>
    public static string TableName(string runId)
    {
        var name = "CRIU-" + runId;
        return name.Length > CriuTableSpecLength - "inet ".Length ? name[..(CriuTableSpecLength - "inet ".Length)] : name;
    }

    /// <summary>Drops the packets of every connection, in the namespaces of their sockets, from now on.</summary>
    /// <param name="failure">DumpFailed or RestoreFailed: what a refusal by nftables is reported as.</param>
    /// <param name="ownedBySession">
    /// A dump's lock: its tables carry nftables' owner flag, so that the kernel removes them if this session dies
    /// before it lifts them (the processes then carry on with their connections); <see cref="Persist"/> makes them
    /// outlive the session once the processes are gone.
    /// </param>
    public static NetworkLock Engage(string runId, IReadOnlyCollection<LockedConnection> connections, CheckpointErrorKind failure, bool ownedBySession)
    {
        CheckPrivilege(connections.Count, string.Join(", ", connections), TableName(runId));
        var locked = new NetworkLock(TableName(runId));
        try
        {
            foreach (var group in connections.GroupBy(c => c.Namespace.Inode))
            {
                var ns = group.First().Namespace;
                NftablesContext? owner = null;
                using (ns.Enter())
                {
                    if (ownedBySession)
                    {
                        owner = NftablesContext.Open(); // its socket stays in this namespace
                        owner.Run(locked.Ruleset(group, owned: true));
                    }
                    else
                    {
                        Nftables.Run(locked.Ruleset(group, owned: false));
                    }
                }
                locked.places.Add((ns.Duplicate(), group.ToList(), owner));
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
    public void Release() => ForEachPlace((ns, _, owner) =>
    {
        if (owner is not null)
        {
            owner.Run($"delete table inet {table}\n");
            return;
        }
        using (ns.Enter())
        {
            Nftables.Run($"add table inet {table}\ndelete table inet {table}\n");
        }
    });

    /// <summary>
    /// Makes a lock owned by this session outlive it, for the restore to lift: in one transaction each table is
    /// replaced by the same one without the owner flag.
    /// </summary>
    /// <exception cref="NftablesException">A table could not be replaced (the others still are).</exception>
    public void Persist() => ForEachPlace((_, connections, owner) => owner?.Run($"delete table inet {table}\n" + Ruleset(connections, owned: false)));

    // Does something to the table in every place, then lets go of the places (the lock is done with): a failure in one
    // place does not keep the others from it, and the first is thrown at the end.
    private void ForEachPlace(Action<NetworkNamespace, List<LockedConnection>, NftablesContext?> action)
    {
        NftablesException? failed = null;
        foreach (var (ns, connections, owner) in places)
        {
            try
            {
                action(ns, connections, owner);
            }
            catch (NftablesException e)
            {
                failed ??= e;
            }
            finally
            {
                owner?.Dispose();
                ns.Dispose();
            }
        }
        places.Clear();
        if (failed is not null)
        {
            throw failed;
        }
    }

    // The table with its sets filled, replacing whatever table had this name, unless it is to be owned (an owned table
    // cannot replace one of another socket: that one, a leftover, stays and the transaction fails).
    private string Ruleset(IEnumerable<LockedConnection> connections, bool owned)
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
        if (!owned)
        {
            text.Append($"add table inet {table}\ndelete table inet {table}\n");
        }
        text.Append($"table inet {table} {{\n");
        if (owned)
        {
            text.Append("\tflags owner;\n");
        }
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
