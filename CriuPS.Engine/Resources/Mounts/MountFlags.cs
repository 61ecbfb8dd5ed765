namespace CriuPS.Engine.Resources.Mounts;

/// <summary>
/// The MS_* flags of mount(2) that mountinfo spells as words: a mount's own options ("ro,nosuid,relatime", saved in
/// MntEntry.flags) and its superblock's read-only state (sb_flags), as CRIU saves them; the superblock's other
/// options are the filesystem's data string (MntEntry.options).
/// </summary>
internal static class MountFlags
{
    public const ulong ReadOnly = 0x1, NoSuid = 0x2, NoDev = 0x4, NoExec = 0x8, Remount = 0x20, NoAtime = 0x400,
        NoDirAtime = 0x800, Bind = 0x1000, Recursive = 0x4000, Private = 0x40000, Slave = 0x80000, Shared = 0x100000,
        RelAtime = 0x200000, StrictAtime = 0x1000000;

    // MNT_DETACH for umount2.
    public const ulong Detach = 0x2;

    private static readonly Dictionary<string, ulong> Words = new(StringComparer.Ordinal)
    {
        ["ro"] = ReadOnly, ["nosuid"] = NoSuid, ["nodev"] = NoDev, ["noexec"] = NoExec, ["noatime"] = NoAtime,
        ["nodiratime"] = NoDirAtime, ["relatime"] = RelAtime, ["strictatime"] = StrictAtime,
    };

    /// <summary>The flags of a mount's options ("rw,nosuid,relatime"); words that are not flags ("rw") count for nothing.</summary>
    public static ulong Of(string options) =>
        options.Split(',', StringSplitOptions.RemoveEmptyEntries).Aggregate(0UL, (flags, word) => flags | Words.GetValueOrDefault(word));

    /// <summary>The superblock's flags (its read-only state) of its options ("ro,size=4k").</summary>
    public static ulong OfSuperblock(string superOptions) =>
        superOptions.Split(',').Contains("ro", StringComparer.Ordinal) ? ReadOnly : 0;

    /// <summary>The filesystem's data string: the superblock's options less "ro"/"rw", which are flags.</summary>
    public static string Data(string superOptions) =>
        string.Join(',', superOptions.Split(',', StringSplitOptions.RemoveEmptyEntries).Where(o => o is not ("ro" or "rw")));

    /// <summary>Every flag a bind mount's remount may set (MS_REMOUNT | MS_BIND takes only these).</summary>
    public const ulong PerMount = ReadOnly | NoSuid | NoDev | NoExec | NoAtime | NoDirAtime | RelAtime | StrictAtime;
}
