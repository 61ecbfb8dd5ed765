using System.Globalization;

namespace CriuPS.Native.Proc;

/// <summary>An eventfd's fdinfo: "eventfd-count" (hex) and "eventfd-semaphore" (Linux 6.7+; absent means no).</summary>
public readonly record struct EventfdInfo(ulong Counter, bool Semaphore)
{
    public static EventfdInfo Of(FdInfo info) =>
        new(AnonInodeFdInfo.Hex(info.Get("eventfd-count"), "eventfd-count"), info.Get("eventfd-semaphore") == "1");
}

/// <summary>A signalfd's fdinfo: "sigmask" (hex, bit N-1 for signal N).</summary>
public readonly record struct SignalfdInfo(ulong Mask)
{
    public static SignalfdInfo Of(FdInfo info) => new(AnonInodeFdInfo.Hex(info.Get("sigmask"), "sigmask"));
}

/// <summary>
/// A timerfd's fdinfo: "clockid", "ticks" (expirations not yet read), "settime flags" (octal), "it_value" (time
/// left, "(sec, nsec)") and "it_interval".
/// </summary>
public readonly record struct TimerfdInfo(int Clock, ulong Ticks, uint SettimeFlags, ulong ValueSeconds, ulong ValueNanoseconds, ulong IntervalSeconds, ulong IntervalNanoseconds)
{
    public static TimerfdInfo Of(FdInfo info)
    {
        var (valueSeconds, valueNanoseconds) = Pair(info.Get("it_value"), "it_value");
        var (intervalSeconds, intervalNanoseconds) = Pair(info.Get("it_interval"), "it_interval");
        return new TimerfdInfo(
            int.Parse(info.Get("clockid") ?? throw AnonInodeFdInfo.Missing("clockid"), CultureInfo.InvariantCulture),
            ulong.Parse(info.Get("ticks") ?? throw AnonInodeFdInfo.Missing("ticks"), CultureInfo.InvariantCulture),
            Convert.ToUInt32(info.Get("settime flags") ?? throw AnonInodeFdInfo.Missing("settime flags"), 8),
            valueSeconds, valueNanoseconds, intervalSeconds, intervalNanoseconds);
    }

    private static (ulong Seconds, ulong Nanoseconds) Pair(string? text, string key)
    {
        var parts = (text ?? throw AnonInodeFdInfo.Missing(key)).Trim('(', ')').Split(',', StringSplitOptions.TrimEntries);
        return parts.Length == 2
            ? (ulong.Parse(parts[0], CultureInfo.InvariantCulture), ulong.Parse(parts[1], CultureInfo.InvariantCulture))
            : throw new InvalidDataException($"fdinfo: '{key}: {text}' is not a (seconds, nanoseconds) pair");
    }
}

/// <summary>
/// One watch of an inotify fdinfo ("inotify wd:2 ino:35a sdev:fe00000 mask:2 ignored_mask:0 fhandle-bytes:8
/// fhandle-type:1 f_handle:5a03000000000000"). <see cref="Device"/> is in the kernel's encoding (major &lt;&lt; 20 |
/// minor); <see cref="Handle"/> is null when the filesystem gives no file handles.
/// </summary>
public sealed record InotifyWatchInfo(int Wd, ulong Inode, uint Device, uint Mask, uint IgnoredMask, int HandleType, byte[]? Handle)
{
    public uint DeviceMajor => Device >> 20;

    public uint DeviceMinor => Device & 0xfffff;

    public static IReadOnlyList<InotifyWatchInfo> Of(FdInfo info) => info.Records("inotify wd").Select(Parse).ToList();

    private static InotifyWatchInfo Parse(IReadOnlyDictionary<string, string> f)
    {
        byte[]? handle = null;
        int type = 0;
        if (f.TryGetValue("f_handle", out var hex))
        {
            handle = Convert.FromHexString(hex);
            type = (int)AnonInodeFdInfo.Hex(f, "fhandle-type");
            if ((ulong)handle.Length != AnonInodeFdInfo.Hex(f, "fhandle-bytes"))
            {
                throw new InvalidDataException($"fdinfo: inotify wd {f["wd"]} has a handle of {handle.Length} bytes, not fhandle-bytes:{f["fhandle-bytes"]}");
            }
        }
        return new InotifyWatchInfo(
            (int)AnonInodeFdInfo.Hex(f, "wd"), AnonInodeFdInfo.Hex(f, "ino"), (uint)AnonInodeFdInfo.Hex(f, "sdev"),
            (uint)AnonInodeFdInfo.Hex(f, "mask"), (uint)AnonInodeFdInfo.Hex(f, "ignored_mask"), type, handle);
    }
}

/// <summary>
/// A fanotify group's fdinfo: "fanotify flags:10 event-flags:0" (its fanotify_init flags and the open flags of event
/// files, hex), then one line per mark: "fanotify ino:4f969 sdev:800013 mflags:0 mask:3b ignored_mask:0
/// fhandle-bytes:8 fhandle-type:1 f_handle:69f9..." on an inode, "fanotify mnt_id:1c mflags:0 mask:3b
/// ignored_mask:0" on a mount, "fanotify sdev:800013 mflags:0 mask:3b ignored_mask:0" on a filesystem.
/// </summary>
public sealed record FanotifyInfo(uint Flags, uint EventFileFlags, IReadOnlyList<FanotifyMarkInfo> Marks)
{
    public static FanotifyInfo Of(FdInfo info)
    {
        var group = info.Records("fanotify flags").FirstOrDefault() ?? throw AnonInodeFdInfo.Missing("fanotify flags");
        var marks = new List<FanotifyMarkInfo>();
        foreach (var f in info.Records("fanotify ino"))
        {
            byte[]? handle = f.TryGetValue("f_handle", out var hex) ? Convert.FromHexString(hex) : null;
            marks.Add(new FanotifyMarkInfo(FanotifyMarkInfo.OnInode, AnonInodeFdInfo.Hex(f, "ino"), (uint)AnonInodeFdInfo.Hex(f, "sdev"), 0,
                (uint)AnonInodeFdInfo.Hex(f, "mflags"), (uint)AnonInodeFdInfo.Hex(f, "mask"), (uint)AnonInodeFdInfo.Hex(f, "ignored_mask"),
                handle is null ? 0 : (int)AnonInodeFdInfo.Hex(f, "fhandle-type"), handle));
        }
        foreach (var f in info.Records("fanotify mnt_id"))
        {
            marks.Add(new FanotifyMarkInfo(FanotifyMarkInfo.OnMount, 0, 0, (int)AnonInodeFdInfo.Hex(f, "mnt_id"),
                (uint)AnonInodeFdInfo.Hex(f, "mflags"), (uint)AnonInodeFdInfo.Hex(f, "mask"), (uint)AnonInodeFdInfo.Hex(f, "ignored_mask"), 0, null));
        }
        foreach (var f in info.Records("fanotify sdev"))
        {
            marks.Add(new FanotifyMarkInfo(FanotifyMarkInfo.OnFilesystem, 0, (uint)AnonInodeFdInfo.Hex(f, "sdev"), 0,
                (uint)AnonInodeFdInfo.Hex(f, "mflags"), (uint)AnonInodeFdInfo.Hex(f, "mask"), (uint)AnonInodeFdInfo.Hex(f, "ignored_mask"), 0, null));
        }
        return new FanotifyInfo((uint)AnonInodeFdInfo.Hex(group, "flags"), (uint)AnonInodeFdInfo.Hex(group, "event-flags"), marks);
    }
}

/// <summary>
/// One mark of a fanotify group: on an inode (its number, device in the kernel's encoding major &lt;&lt; 20 | minor,
/// and handle, null when the filesystem gives none), on a mount (its id), or on a whole filesystem (its device).
/// </summary>
public sealed record FanotifyMarkInfo(int Kind, ulong Inode, uint Device, int MountId, uint Flags, uint Mask, uint IgnoredMask, int HandleType, byte[]? Handle)
{
    /// <summary>The kinds, numbered as CRIU's mark_type (a filesystem mark has no number there).</summary>
    public const int OnInode = 1, OnMount = 2, OnFilesystem = 3;

    public uint DeviceMajor => Device >> 20;

    public uint DeviceMinor => Device & 0xfffff;
}

/// <summary>
/// One registration of an epoll fdinfo ("tfd: 5 events: 19 data: 7 pos:0 ino:15 sdev:10"): the fd number it was
/// added with, its events and data (hex), and the position, inode and device (kernel encoding) of the target file.
/// </summary>
public sealed record EpollTargetInfo(int Fd, uint Events, ulong Data, ulong Position, ulong Inode, uint Device)
{
    public static IReadOnlyList<EpollTargetInfo> Of(FdInfo info) => info.Records("tfd").Select(f => new EpollTargetInfo(
        int.Parse(f["tfd"], CultureInfo.InvariantCulture),
        (uint)AnonInodeFdInfo.Hex(f, "events"),
        AnonInodeFdInfo.Hex(f, "data"),
        ulong.Parse(f.GetValueOrDefault("pos", "0"), CultureInfo.InvariantCulture),
        AnonInodeFdInfo.Hex(f, "ino"),
        (uint)AnonInodeFdInfo.Hex(f, "sdev"))).ToList();
}

internal static class AnonInodeFdInfo
{
    public static ulong Hex(string? text, string key) =>
        ulong.Parse(text ?? throw Missing(key), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    public static ulong Hex(IReadOnlyDictionary<string, string> fields, string key) =>
        Hex(fields.GetValueOrDefault(key), key);

    public static InvalidDataException Missing(string key) => new($"fdinfo has no '{key}' field");
}
