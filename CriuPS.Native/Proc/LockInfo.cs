using System.Globalization;

namespace CriuPS.Native.Proc;

/// <summary>
/// One granted file lock, from a line of /proc/locks or a "lock:" line of /proc/PID/fdinfo/FD, such as
/// "1: POSIX  ADVISORY  WRITE 9145 fe:00:11659541 10 29" (pid -1 for OFD locks, end "EOF" for a lock to the end).
/// </summary>
public sealed record LockInfo(LockKind Kind, string Mode, string Access, int Pid, uint DevMajor, uint DevMinor, ulong Inode, long Start, long? End)
{
    public bool IsWrite => Access == "WRITE";

    /// <summary>The length fcntl takes: 0 means up to the end of the file, however far it grows.</summary>
    public long Length => End is null ? 0 : End.Value - Start + 1;

    /// <summary>The granted locks in /proc/locks (requests still waiting, the "->" lines, and locks on no inode are left out).</summary>
    public static List<LockInfo> ReadAll() =>
        File.ReadAllLines("/proc/locks").Where(l => !l.Contains("->", StringComparison.Ordinal)).Select(TryParse).OfType<LockInfo>().ToList();

    /// <summary>The lock a line describes, or null when the line is not one this parser knows.</summary>
    public static LockInfo? TryParse(string line)
    {
        var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        var file = fields.Length >= 8 ? fields[5].Split(':') : Array.Empty<string>();
        if (fields.Length < 8 || !fields[0].EndsWith(':') || file.Length != 3
            || !int.TryParse(fields[4], NumberStyles.Integer, CultureInfo.InvariantCulture, out int pid)
            || !uint.TryParse(file[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out uint major)
            || !uint.TryParse(file[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out uint minor)
            || !ulong.TryParse(file[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out ulong inode)
            || !long.TryParse(fields[6], NumberStyles.Integer, CultureInfo.InvariantCulture, out long start))
        {
            return null;
        }
        long? end = null;
        if (fields[7] != "EOF")
        {
            if (!long.TryParse(fields[7], NumberStyles.Integer, CultureInfo.InvariantCulture, out long last))
            {
                return null;
            }
            end = last;
        }
        var kind = fields[1] switch
        {
            "POSIX" => LockKind.Posix,
            "FLOCK" => LockKind.Flock,
            "OFDLCK" => LockKind.Ofd,
            "LEASE" => LockKind.Lease,
            _ => LockKind.Other,
        };
        return new LockInfo(kind, fields[2], fields[3], pid, major, minor, inode, start, end);
    }

    /// <summary>"POSIX write lock", "flock read lock", "read lease"...</summary>
    public override string ToString() => Kind switch
    {
        LockKind.Lease => $"{Access.ToLowerInvariant()} lease",
        _ => $"{Kind switch { LockKind.Posix => "POSIX", LockKind.Flock => "flock", LockKind.Ofd => "OFD", _ => Mode }} {Access.ToLowerInvariant()} lock",
    };
}
