using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Logging;
using CriuPS.Engine.Resources.Files;
using CriuPS.Engine.Resources.Memory;
using CriuPS.Engine.Resources.Process;
using CriuPS.Engine.Resources.Sockets;

namespace CriuPS.Engine.Dump;

/// <summary>State shared by every process of one dump: options, log, the directory being written, shared tables.</summary>
internal sealed class DumpSession
{
    public DumpSession(DumpOptions options, EngineLog log, IImageOutput output, ParentImage? parent)
    {
        Options = options;
        Log = log;
        Output = output;
        Parent = parent;
    }

    public DumpOptions Options { get; }

    public EngineLog Log { get; }

    /// <summary>Where the image files go: a directory made visible at the end, or a page server.</summary>
    public IImageOutput Output { get; }

    /// <summary>Creates image file <paramref name="type"/> (for <paramref name="id"/>) in the output.</summary>
    public ImageWriter CreateImage(ImageType type, string? id)
    {
        Native.Diagnostics.DeathPoint.Reach(Native.Diagnostics.DeathPoint.Write);
        var name = type.FileName(id);
        return ImageWriter.Create(Output.Create(name), name, type);
    }

    /// <summary>Writes an image that holds exactly one entry.</summary>
    public void WriteSingle(ImageType type, string? id, Google.Protobuf.IMessage entry)
    {
        using var writer = CreateImage(type, id);
        writer.WriteEntry(entry);
    }

    /// <summary>The image an incremental dump refers to for the pages not written since (-ParentImage), if any.</summary>
    public ParentImage? Parent { get; }

    /// <summary>files.img: every open file description, mapped file, exe, cwd and root, by id.</summary>
    public FileRegistry Files { get; } = new();

    /// <summary>pipes-data.img: unread pipe contents.</summary>
    public List<(PipeDataEntry Entry, byte[] Data)> PipeData { get; } = new();

    /// <summary>CLOCK_MONOTONIC less the scheduler's clock of a CPU, measured once per dump and CPU when a thread waits in a call that needs it.</summary>
    public long SchedClockOffset(int cpu)
    {
        if (!schedClockOffsets.TryGetValue(cpu, out long offset))
        {
            schedClockOffsets[cpu] = offset = Native.Proc.SchedClock.MonotonicOffset(cpu);
        }
        return offset;
    }

    private readonly Dictionary<int, long> schedClockOffsets = new();

    /// <summary>The time namespaces whose timens-ID.img is written (by id).</summary>
    public HashSet<uint> TimeNamespacesSaved { get; } = new();

    /// <summary>seccomp.img: every thread's chain of filters.</summary>
    public List<SeccompFilter> SeccompFilters { get; } = new();

    /// <summary>Who is connected to whom among the tree's unix sockets, looked at once the tree is frozen.</summary>
    public UnixSocketTopology? UnixSockets { get; set; }

    /// <summary>The network lock, the connections in repair mode and sock_diag's view of the tree's IPv4/IPv6 sockets.</summary>
    public InetSocketDump InetSockets { get; } = new();

    /// <summary>
    /// This dump's id (inventory dump_criu_run_id, as CRIU's): it names the network lock's nftables table, and write
    /// tracking counts writes from the image that has it.
    /// </summary>
    /// <summary>A move's final dump: the processes it left stopped (DumpOptions.HoldStopped).</summary>
    public Migration.HeldTree? Held { get; set; }

    public string RunId { get; } = Guid.NewGuid().ToString();

    /// <summary>tty-info.img: the terminals of shell jobs.</summary>
    public List<TtyInfoEntry> TtyInfos { get; } = new();

    /// <summary>The live processes, in tree order (the root first).</summary>
    public List<DumpedProcess> Processes { get; } = new();

    /// <summary>The zombies of the tree.</summary>
    public List<DumpedZombie> Zombies { get; } = new();

    /// <summary>Every pid of the tree, parents before children: the order of pstree.img.</summary>
    public List<int> TreeOrder { get; } = new();

    /// <summary>The images as written (<see cref="ImageSetWriter.Write"/>), for the dump's result; null before.</summary>
    public ImageSetWriter.Written? Written { get; set; }

    /// <summary>Ids of shared kernel objects (mm, fd table, fs, sighand, namespaces), CRIU style.</summary>
    public KernelObjectIds ObjectIds { get; } = new();

    public uint NextPagesId { get; set; } = 1;

    /// <summary>
    /// Entries of the images only some resources need (socket queues, file locks, ghost files...), by image type and
    /// file id; written with the others.
    /// </summary>
    public Dictionary<(ImageType Type, string? Id), List<ImageEntry>> ExtraImages { get; } = new();

    public void AddImageEntry(ImageType type, string? id, Google.Protobuf.IMessage message, byte[]? payload = null)
    {
        if (!ExtraImages.TryGetValue((type, id), out var entries))
        {
            entries = new List<ImageEntry>();
            ExtraImages[(type, id)] = entries;
        }
        entries.Add(new ImageEntry(message, payload));
    }

    private readonly Dictionary<Type, object> states = new();

    /// <summary>The state one resource module keeps for the whole dump (what it already saved), created on first use.</summary>
    public T State<T>() where T : class, new()
    {
        if (!states.TryGetValue(typeof(T), out var state))
        {
            state = new T();
            states[typeof(T)] = state;
        }
        return (T)state;
    }

    /// <summary>stats-dump (CRIU's required fields all start at zero).</summary>
    public DumpStatsEntry Stats { get; } = new()
    {
        FreezingTime = 0, FrozenTime = 0, MemdumpTime = 0, MemwriteTime = 0,
        PagesScanned = 0, PagesSkippedParent = 0, PagesWritten = 0, PagesLazy = 0,
    };
}
