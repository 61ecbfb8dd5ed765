namespace CriuPS.Engine.Images.Proto;

/// <summary>
/// The member of a files.img entry that describes the file (reg, pipe, usk...): each repeats the entry's id, which
/// CRIU's readers use as often as the entry's own. Declared on the generated classes, so that the restore's check of
/// the two reads the id without the classes' reflection.
/// </summary>
public interface IFileDescription
{
    uint Id { get; }
}

public sealed partial class RegFileEntry : IFileDescription;

public sealed partial class PipeEntry : IFileDescription;

public sealed partial class FifoEntry : IFileDescription;

public sealed partial class InetSkEntry : IFileDescription;

public sealed partial class UnixSkEntry : IFileDescription;

public sealed partial class EventfdFileEntry : IFileDescription;

public sealed partial class EventpollFileEntry : IFileDescription;

public sealed partial class InotifyFileEntry : IFileDescription;

public sealed partial class SignalfdEntry : IFileDescription;

public sealed partial class PacketSockEntry : IFileDescription;

public sealed partial class TtyFileEntry : IFileDescription;

public sealed partial class FanotifyFileEntry : IFileDescription;

public sealed partial class NetlinkSkEntry : IFileDescription;

public sealed partial class NsFileEntry : IFileDescription;

public sealed partial class TunfileEntry : IFileDescription;

public sealed partial class ExtFileEntry : IFileDescription;

public sealed partial class TimerfdEntry : IFileDescription;

public sealed partial class MemfdFileEntry : IFileDescription;

public sealed partial class BpfmapFileEntry : IFileDescription;

public sealed partial class PidfdEntry : IFileDescription;
