using CriuPS.Engine.Errors;
using CriuPS.Native.Interop;

namespace CriuPS.Engine.Resources.Sockets;

/// <summary>
/// A network namespace that sockets live in: the tree's, made again from the image or named by the user at restore
/// (Resources/Network/TreeNetwork), or another one a socket came from, which must still exist, or exist again under
/// the same name in /run/netns (ip netns). The engine works in it by moving its own thread there for a moment
/// (<see cref="Enter"/>): sockets are created, sock_diag is asked, nftables rules are set and devices, addresses and
/// routes are read or made in that namespace.
/// </summary>
internal sealed class NetworkNamespace : IDisposable
{
    private const string NamedNamespaces = "/run/netns";

    private NetworkNamespace(FileDescriptor handle, ulong inode, string? name)
    {
        Handle = handle;
        Inode = inode;
        Name = name;
    }

    public FileDescriptor Handle { get; }

    /// <summary>The namespace's inode, what /proc/PID/ns/net shows as net:[inode].</summary>
    public ulong Inode { get; }

    /// <summary>Its name under /run/netns, if ip netns named it.</summary>
    public string? Name { get; }

    /// <summary>The network namespace the engine runs in.</summary>
    public static ulong EngineInode => FileStatus.Of("/proc/self/ns/net").Inode;

    /// <summary>Whether this is the namespace the engine runs in (nothing to enter).</summary>
    public bool IsEngines => Inode == EngineInode;

    /// <summary>The namespace <paramref name="handle"/> (now owned by it) refers to, named <paramref name="name"/> if known.</summary>
    public static NetworkNamespace FromHandle(FileDescriptor handle, string? name)
    {
        ulong inode = FileStatus.Of(handle).Inode;
        return new NetworkNamespace(handle, inode, name ?? NameOf(inode));
    }

    /// <summary>The namespace a socket belongs to (which need not be its holder's).</summary>
    public static NetworkNamespace OfSocket(FileDescriptor socket)
    {
        var handle = Socket.OpenNetworkNamespace(socket);
        ulong inode = FileStatus.Of(handle).Inode;
        return new NetworkNamespace(handle, inode, NameOf(inode));
    }

    /// <summary>The namespace with <paramref name="inode"/>, else the one named <paramref name="name"/> in /run/netns; null when neither exists.</summary>
    public static NetworkNamespace? Find(ulong inode, string? name)
    {
        if (inode == EngineInode)
        {
            return new NetworkNamespace(FileDescriptor.Open("/proc/self/ns/net", O.RDONLY), inode, null);
        }
        var candidates = Named().Select(n => (Path: Path.Combine(NamedNamespaces, n), Name: (string?)n))
            .Concat(Directory.EnumerateDirectories("/proc").Select(d => (Path: Path.Combine(d, "ns/net"), Name: (string?)null)));
        foreach (var (path, found) in candidates)
        {
            if (InodeOf(path) == inode && Open(path, inode, found ?? NameOf(inode)) is { } known)
            {
                return known;
            }
        }
        return name is not null && InodeOf(Path.Combine(NamedNamespaces, name)) is ulong renewed ? Open(Path.Combine(NamedNamespaces, name), renewed, name) : null;
    }

    /// <summary>
    /// The namespace a saved socket (<paramref name="shown"/>) lived in: the engine's when none was saved, else the one
    /// found by <see cref="Find"/>; ImageIncompatible naming it when it does not exist now.
    /// </summary>
    public static NetworkNamespace Saved(bool saved, ulong inode, string? name, string shown, string directory) =>
        !saved ? Engine() : Find(inode, name) ?? throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
            $"The {shown} lived in the {Describe(inode, name)}, which does not exist now.",
            directory, "CriuPS does not save network namespaces: create it again (ip netns add), then restore.");

    /// <summary>The namespace the engine runs in.</summary>
    public static NetworkNamespace Engine() => new(FileDescriptor.Open("/proc/self/ns/net", O.RDONLY), EngineInode, null);

    /// <summary>Moves the calling thread into the namespace until the scope is disposed (nothing to do for the engine's own).</summary>
    public IDisposable Enter() => IsEngines ? NoScope.Instance : Setns.EnterNetwork(Handle);

    public void Dispose() => Handle.Dispose();

    /// <summary>Another handle of the same namespace, for an owner that outlives this one.</summary>
    public NetworkNamespace Duplicate() => new(new FileDescriptor(Fcntl.Call(Handle, Fcntl.F_DUPFD_CLOEXEC)), Inode, Name);

    public override string ToString() => Describe(Inode, Name);

    /// <summary>How messages name a saved namespace.</summary>
    public static string Describe(ulong inode, string? name) => name is null ? $"network namespace net:[{inode}]" : $"network namespace '{name}' (net:[{inode}])";

    private static NetworkNamespace? Open(string path, ulong inode, string? name)
    {
        var handle = FileDescriptor.TryOpen(path, O.RDONLY, out _);
        return handle is null ? null : new NetworkNamespace(handle, inode, name);
    }

    /// <summary>The name under /run/netns of the namespace with <paramref name="inode"/>, if ip netns named it.</summary>
    public static string? NameOf(ulong inode) => Named().FirstOrDefault(n => InodeOf(Path.Combine(NamedNamespaces, n)) == inode);

    private static IEnumerable<string> Named() =>
        Directory.Exists(NamedNamespaces) ? Directory.EnumerateFileSystemEntries(NamedNamespaces).Select(Path.GetFileName).OfType<string>() : [];

    private static ulong? InodeOf(string path)
    {
        try
        {
            return FileStatus.Of(path).Inode;
        }
        catch (NativeException)
        {
            return null; // gone meanwhile, or not a namespace we may see
        }
    }

    private sealed class NoScope : IDisposable
    {
        public static readonly NoScope Instance = new();

        public void Dispose()
        {
        }
    }
}
