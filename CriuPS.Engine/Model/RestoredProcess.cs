namespace CriuPS.Engine.Model;

/// <summary>A process brought back by Restore-Process (shaped so that `| Stop-Process` binds its Id).</summary>
public sealed class RestoredProcess
{
    /// <summary>
    /// The PID as this session sees it (Get-Process, Stop-Process): the same as at checkpoint time, but with
    /// -NewPidNamespace, where the process has its saved PID (<see cref="NamespacePid"/>) inside its namespace and
    /// this one outside.
    /// </summary>
    public required int Id { get; init; }

    /// <summary>The PID as this session sees it: the same as <see cref="Id"/>.</summary>
    public int HostPid => Id;

    /// <summary>The PID the process sees (getpid()): the saved one, in its PID namespace.</summary>
    public required int NamespacePid { get; init; }

    /// <summary>With -NewPidNamespace: the PID (as this session sees it) of the namespace's init, the restored process's parent.</summary>
    public int? PidNamespaceInit { get; init; }

    public required string Name { get; init; }

    /// <summary>The image it was restored from.</summary>
    public required string ImagePath { get; init; }

    /// <summary>The parent: the restoring PowerShell process, or init's side with -Detach.</summary>
    public required int ParentId { get; init; }

    public required bool Detached { get; init; }

    public required int ThreadCount { get; init; }

    /// <summary>Bytes of memory read back from the image.</summary>
    public required long MemoryBytes { get; init; }

    /// <summary>From the start of the restore until the process was running again.</summary>
    public required TimeSpan RestoreTime { get; init; }

    /// <summary>Of which: reading and checking the images.</summary>
    public required TimeSpan ReadTime { get; init; }

    /// <summary>
    /// Verifying the image files against their digests (criups-digests.img): all but the pages' blocks before anything
    /// was created (part of <see cref="ReadTime"/>), the pages' blocks on another core while the processes were made
    /// and filled. Part of <see cref="RestoreTime"/>, and it may be longer than <see cref="ReadTime"/>.
    /// </summary>
    public required TimeSpan VerifyTime { get; init; }

    /// <summary>Of which: filling memory.</summary>
    public required TimeSpan MemoryTime { get; init; }

    /// <summary>Where the root went: its cgroup in each hierarchy once restored, as "memory:/path" ("v2:/path" for cgroup v2).</summary>
    public IReadOnlyList<string> Cgroups { get; init; } = [];

    /// <summary>The restore log.</summary>
    public string? LogPath { get; init; }

    /// <summary>With -LazyPages: the pages still arriving, and how the transfer ends.</summary>
    public Lazy.LazyRestore? LazyRestore { get; init; }

    /// <summary>Whether the process has ended (known for processes that stayed our children).</summary>
    public bool HasExited => Restore.ChildReaper.TryGetExitCode(Reaped, out var code) ? code is not null : !Directory.Exists($"/proc/{Id}");

    /// <summary>The exit status, once a child process has ended (in a new PID namespace, its init's, which ends with it and with its status).</summary>
    public int? ExitCode => Restore.ChildReaper.TryGetExitCode(Reaped, out var code) ? code : null;

    // Our child: the process, or the init of its PID namespace.
    private int Reaped => PidNamespaceInit ?? Id;

    public override string ToString() => $"{Name} ({Id})";
}
