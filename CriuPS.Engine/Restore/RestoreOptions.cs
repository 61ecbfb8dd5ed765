namespace CriuPS.Engine.Restore;

/// <summary>What to restore and how.</summary>
public sealed class RestoreOptions
{
    /// <summary>The image directory to restore from.</summary>
    public required string ImagePath { get; init; }

    /// <summary>Leave the restored process as a child of init instead of the caller.</summary>
    public bool Detach { get; init; }

    /// <summary>Reconnect saved terminal descriptors to the caller's terminal, and join the caller's session.</summary>
    public bool ShellJob { get; init; }

    /// <summary>
    /// Let the process run before its private anonymous memory is back: those pages arrive on fault and in the
    /// background (post-copy), served by this process until every one is in.
    /// </summary>
    public bool LazyPages { get; init; }

    /// <summary>With <see cref="LazyPages"/>: the page server the pages come from (by default, the image directory).</summary>
    public PageServer.PageServerEndpoint? PageServer { get; init; }

    /// <summary>Restore the saved TCP connections (CRIU's --tcp-established).</summary>
    public bool TcpEstablished { get; init; }

    /// <summary>Bring the saved TCP connections back closed instead (CRIU's --tcp-close); wins over <see cref="TcpEstablished"/>.</summary>
    public bool TcpClose { get; init; }

    /// <summary>
    /// A network namespace to restore the tree into (a /run/netns/NAME or /proc/PID/ns/net), as CRIU's --join-ns:
    /// the saved one, if any, is then not made again. By default a tree that had a namespace of its own gets a new one made from the image.
    /// </summary>
    public string? NetworkNamespace { get; init; }

    /// <summary>
    /// The outer end's name for each saved veth device (inner name to outer name), made in the restorer's namespace; by
    /// default the name the outer end had at dump.
    /// </summary>
    public IReadOnlyDictionary<string, string>? ExternalVeth { get; init; }

    /// <summary>
    /// The host path bound at each external mount of a saved mount namespace (its key, or its mount point, to the host
    /// path), as CRIU's --external mnt[KEY]:PATH.
    /// </summary>
    public IReadOnlyDictionary<string, string>? ExternalMounts { get; init; }

    /// <summary>What becomes of the saved cgroups (CRIU's --manage-cgroups); by default the processes go back into them, missing ones made again.</summary>
    public CgroupMode CgroupMode { get; init; } = CgroupMode.Soft;

    /// <summary>
    /// Restore into a new PID namespace (with a mount namespace whose /proc shows it): the tree gets its saved PIDs
    /// inside, under an init of its own (criups-init, PID 1), so that one image can be restored many times side by side.
    /// </summary>
    public bool NewPidNamespace { get; init; }

    /// <summary>
    /// A host the caller started for this restore (a sleep, its child, in a session of its own) for the restore to
    /// seize, rather than start one itself: criups-engine restores for a PowerShell this way, so that the restored
    /// root is the PowerShell's child (CLONE_PARENT makes it the host's parent's), as when the session restores. The
    /// caller kills and reaps the host once the restore ended, and reaps the root.
    /// </summary>
    public int? HostProcessId { get; init; }

    /// <summary>
    /// Told the root's PID as soon as it exists as the caller's child (not with <see cref="Detach"/>): whatever becomes
    /// of the restore, a caller that is not the tracer (criups-engine's PowerShell) must reap it.
    /// </summary>
    public Action<int>? RootCreated { get; init; }

    /// <summary>Cancels the restore (whatever was created is killed) at the next phase or batch of pages.</summary>
    public CancellationToken Cancellation { get; init; }

    /// <summary>Test hook: fail on purpose at this point (see <see cref="FailurePoint"/>) to prove that nothing is left half-restored.</summary>
    public string? FailAt { get; init; }

    /// <summary>Where the log goes when the image directory is not writable (defaults to a temporary file).</summary>
    public string? LogPath { get; init; }
}
