namespace CriuPS.Engine.Images.Json;

/// <summary>
/// The name tables that the (display).flags and (display).dict hints refer to, with crit's contents
/// (lib/pycriu/images/pb2dict.py: flags_maps, gen_maps, sk_maps), so that CriuPS renders the same
/// names crit does and reads back whatever crit writes.
/// </summary>
internal static class DisplayTables
{
    private static readonly IReadOnlyDictionary<string, IReadOnlyList<(string Name, ulong Bit)>> Flags =
        new Dictionary<string, IReadOnlyList<(string, ulong)>>(StringComparer.Ordinal)
        {
            ["mmap.prot"] = [("PROT_READ", 0x1), ("PROT_WRITE", 0x2), ("PROT_EXEC", 0x4)],
            ["mmap.flags"] = [("MAP_SHARED", 0x1), ("MAP_PRIVATE", 0x2), ("MAP_DROPPABLE", 0x08), ("MAP_ANON", 0x20), ("MAP_GROWSDOWN", 0x0100)],
            ["mmap.status"] =
            [
                // VMA_AREA_NONE is 0: it names no bit, and a zero status shows as "" as in crit.
                ("VMA_AREA_NONE", 0), ("VMA_AREA_REGULAR", 1 << 0), ("VMA_AREA_STACK", 1 << 1), ("VMA_AREA_VSYSCALL", 1 << 2),
                ("VMA_AREA_VDSO", 1 << 3), ("VMA_AREA_HEAP", 1 << 5), ("VMA_FILE_PRIVATE", 1 << 6), ("VMA_FILE_SHARED", 1 << 7),
                ("VMA_ANON_SHARED", 1 << 8), ("VMA_ANON_PRIVATE", 1 << 9), ("VMA_AREA_SYSVIPC", 1 << 10), ("VMA_AREA_SOCKET", 1 << 11),
                ("VMA_AREA_VVAR", 1 << 12), ("VMA_AREA_AIORING", 1 << 13), ("VMA_AREA_MEMFD", 1 << 14), ("VMA_AREA_SHSTK", 1 << 15),
                ("VMA_AREA_UPROBES", 1 << 17), ("VMA_UNSUPP", 1UL << 31),
            ],
            ["rfile.flags"] =
            [
                ("O_WRONLY", 0x1), ("O_RDWR", 0x2), ("O_CREAT", 0x40), ("O_EXCL", 0x80), ("O_NOCTTY", 0x100), ("O_TRUNC", 0x200),
                ("O_APPEND", 0x400), ("O_NONBLOCK", 0x800), ("O_DSYNC", 0x1000), ("FASYNC", 0x2000), ("O_DIRECT", 0x4000),
                ("O_LARGEFILE", 0x8000), ("O_DIRECTORY", 0x10000), ("O_NOFOLLOW", 0x20000), ("O_NOATIME", 0x40000), ("O_CLOEXEC", 0x80000),
            ],
            ["pmap.flags"] = [("PE_PARENT", 1 << 0), ("PE_LAZY", 1 << 1), ("PE_PRESENT", 1 << 2)],
            ["seals.flags"] = [("F_SEAL_SEAL", 0x1), ("F_SEAL_SHRINK", 0x2), ("F_SEAL_GROW", 0x4), ("F_SEAL_WRITE", 0x8), ("F_SEAL_FUTURE_WRITE", 0x10)],
        };

    // Value tables are chosen by the hint ("gen", "sk") and then by the field's own name, as crit does.
    private static readonly IReadOnlyDictionary<string, IReadOnlyDictionary<string, IReadOnlyDictionary<ulong, string>>> Dicts =
        new Dictionary<string, IReadOnlyDictionary<string, IReadOnlyDictionary<ulong, string>>>(StringComparer.Ordinal)
        {
            ["gen"] = new Dictionary<string, IReadOnlyDictionary<ulong, string>>(StringComparer.Ordinal)
            {
                ["task_state"] = new Dictionary<ulong, string> { [1] = "Alive", [3] = "Zombie", [6] = "Stopped" },
            },
            ["sk"] = new Dictionary<string, IReadOnlyDictionary<ulong, string>>(StringComparer.Ordinal)
            {
                ["family"] = new Dictionary<ulong, string> { [1] = "UNIX", [2] = "INET", [10] = "INET6", [16] = "NETLINK", [17] = "PACKET" },
                ["type"] = new Dictionary<ulong, string> { [1] = "STREAM", [2] = "DGRAM", [3] = "RAW", [5] = "SEQPACKET", [10] = "PACKET" },
                ["state"] = new Dictionary<ulong, string>
                {
                    [1] = "ESTABLISHED", [2] = "SYN_SENT", [3] = "SYN_RECV", [4] = "FIN_WAIT1", [5] = "FIN_WAIT2", [6] = "TIME_WAIT",
                    [7] = "CLOSE", [8] = "CLOSE_WAIT", [9] = "LAST_ACK", [10] = "LISTEN",
                },
                ["proto"] = new Dictionary<ulong, string> { [0] = "IP", [6] = "TCP", [17] = "UDP", [136] = "UDPLITE" },
            },
        };

    /// <summary>The bit names of a flags table, or null when there is no table of that name.</summary>
    public static IReadOnlyList<(string Name, ulong Bit)>? FlagTable(string name) => Flags.GetValueOrDefault(name);

    /// <summary>The value names a dict hint gives a field, or null when it has none.</summary>
    public static IReadOnlyDictionary<ulong, string>? DictTable(string name, string fieldName) =>
        Dicts.GetValueOrDefault(name)?.GetValueOrDefault(fieldName);

    /// <summary>"PROT_READ | PROT_WRITE": the names of the bits set, then any unnamed rest in hex ("" for 0).</summary>
    public static string FormatFlags(ulong value, IReadOnlyList<(string Name, ulong Bit)> table)
    {
        var parts = table.Where(f => (value & f.Bit) != 0).Select(f => f.Name).ToList();
        ulong rest = table.Aggregate(value, (left, f) => left & ~f.Bit);
        if (rest != 0)
            parts.Add($"0x{rest:x}");
        return string.Join(" | ", parts);
    }
}
