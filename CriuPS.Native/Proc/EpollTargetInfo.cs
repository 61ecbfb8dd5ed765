using System.Globalization;

namespace CriuPS.Native.Proc;

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
