using System.Globalization;

namespace CriuPS.Native.Proc;

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
