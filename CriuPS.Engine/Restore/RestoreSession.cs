using CriuPS.Engine.Logging;
using CriuPS.Engine.Resources.Sockets;
using CriuPS.Native.Interop;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Restore;

/// <summary>State shared by every process of one restore.</summary>
internal sealed class RestoreSession : IDisposable
{
    public RestoreSession(RestoreOptions options, EngineLog log, ImageSet images)
    {
        Options = options;
        Log = log;
        Images = images;
    }

    public RestoreOptions Options { get; }

    public EngineLog Log { get; }

    public ImageSet Images { get; }

    /// <summary>Our own pid: restored processes pull the descriptors we open for them with pidfd_getfd.</summary>
    public int EnginePid { get; } = Environment.ProcessId;

    /// <summary>The restored processes' PIDs as they see them and as we do (they differ in a PID namespace of the restore's own).</summary>
    public RestoredPids Pids { get; set; } = new();

    /// <summary>The call by which a restored process gets a pidfd of the engine (<see cref="RestoredPids.EnginePidfdCall"/>).</summary>
    public RemoteCall<int> EnginePidfdCall => Pids.EnginePidfdCall(EnginePid);

    /// <summary>Open file descriptions we created for the restored processes, by file id; closed when the restore ends.</summary>
    public Dictionary<uint, FileDescriptor> OpenFiles { get; } = new();

    /// <summary>
    /// Open file descriptions whose after-install work is done (epoll registrations): a description that several
    /// descriptors or processes share is set up once.
    /// </summary>
    public HashSet<uint> FilesSetUp { get; } = new();

    /// <summary>The pipes we created, by pipe id (inode at checkpoint time): both ends, shared by every process using them.</summary>
    public Dictionary<uint, (FileDescriptor Read, FileDescriptor Write)> Pipes { get; } = new();

    /// <summary>
    /// With -LazyPages: the transfer that serves the missing pages. It outlives the session (it runs on after the
    /// restore returns) and is not disposed with it.
    /// </summary>
    public Lazy.LazyTransfer? Lazy { get; set; }

    /// <summary>
    /// For a lazy restore: the pages files whose blocks are verified as they are read (the rest of the image was
    /// verified before anything was created). Null when the whole image was verified up front, or has no digests.
    /// </summary>
    public Images.Digests.PageVerifier? PagesVerifiedOnRead { get; set; }

    /// <summary>The unix sockets of the image, all rebuilt when the first one is opened.</summary>
    public UnixSocketRestore? UnixSockets { get; set; }

    /// <summary>The IPv4/IPv6 sockets of the image, all rebuilt when the first one is opened.</summary>
    public InetSocketRestore? InetSockets { get; set; }

    /// <summary>The network namespace the tree goes to (Resources/Network/TreeNetwork), set up before the sockets.</summary>
    public Resources.Network.TreeNetwork? Network { get; set; }

    private readonly Dictionary<Type, object> states = new();

    /// <summary>
    /// The state one resource module keeps for the whole restore (objects it created for the processes), created on
    /// first use and disposed with the session.
    /// </summary>
    public T State<T>() where T : class, new()
    {
        if (!states.TryGetValue(typeof(T), out var state))
        {
            state = new T();
            states[typeof(T)] = state;
        }
        return (T)state;
    }

    public void Dispose()
    {
        UnixSockets?.Dispose();
        InetSockets?.Dispose();
        Network?.Dispose();
        foreach (var fd in OpenFiles.Values.Concat(Pipes.Values.SelectMany(p => new[] { p.Read, p.Write })))
        {
            fd.Dispose();
        }
        OpenFiles.Clear();
        Pipes.Clear();
        foreach (var state in states.Values.OfType<IDisposable>())
        {
            state.Dispose();
        }
        states.Clear();
    }
}
