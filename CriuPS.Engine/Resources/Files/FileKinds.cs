using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Sockets;

namespace CriuPS.Engine.Resources.Files;

/// <summary>Every kind of open file CriuPS can save and restore.</summary>
internal static class FileKinds
{
    public static readonly IReadOnlyList<FileKind> All = new FileKind[]
    {
        new RegularFiles(),
        new Pipes(),
        new Terminals(),
        new Eventfds(),
        new Signalfds(),
        new Timerfds(),
        new InotifyInstances(),
        new EpollInstances(),
        new UnixSockets(),
        new Memfds(),
        new Fifos(),
        new InetSockets(),
        new PacketSockets(),
        new NetlinkSockets(),
        new FanotifyGroups(),
        new Pidfds(),
    };

    /// <summary>The kind that handles a descriptor, or null when CriuPS does not know it.</summary>
    public static FileKind? For(DescriptorProbe probe) => All.FirstOrDefault(k => k.Handles(probe));

    /// <summary>The kind of a saved file entry, or null when CriuPS cannot restore it.</summary>
    public static FileKind? For(FdTypes type) => All.FirstOrDefault(k => k.Type == type);
}
