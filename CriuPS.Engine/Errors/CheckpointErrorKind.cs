namespace CriuPS.Engine.Errors;

/// <summary>What went wrong, in terms a caller can act on (the PowerShell layer maps each to an error id and category).</summary>
public enum CheckpointErrorKind
{
    /// <summary>No such process.</summary>
    ProcessNotFound,

    /// <summary>A kernel thread has no user state to save.</summary>
    KernelThread,

    /// <summary>The caller asked to checkpoint its own process.</summary>
    SelfCheckpoint,

    /// <summary>The process cannot be traced (another tracer, a zombie, a security module); missing privileges are <see cref="InsufficientPrivilege"/>.</summary>
    NotTraceable,

    /// <summary>
    /// This session may not read or write a path: an image file or directory, a directory on the way to one, or the
    /// /proc files of another user's process. The error names the path, its owner and mode.
    /// </summary>
    PermissionDenied,

    /// <summary>
    /// A capability or a ptrace restriction stands in the way (CAP_CHECKPOINT_RESTORE, CAP_SYS_PTRACE, CAP_SYS_ADMIN...,
    /// kernel.yama.ptrace_scope, a process of another user, a non-dumpable process). The error names exactly what is
    /// missing, and its recommended action how to get it.
    /// </summary>
    InsufficientPrivilege,

    /// <summary>The process holds something CriuPS cannot save yet; nothing was frozen.</summary>
    Unsupported,

    /// <summary>A terminal is involved and -ShellJob was not given.</summary>
    ShellJobRequired,

    /// <summary>An established TCP connection is involved and neither -TcpEstablished nor (on restore) -TcpClose was given.</summary>
    TcpEstablishedRequired,

    /// <summary>The image path is unusable (a file, or a directory that is not empty).</summary>
    ImagePathUnusable,

    /// <summary>No image directory at that path.</summary>
    ImageNotFound,

    /// <summary>An image file is truncated, corrupt, or not a CRIU image.</summary>
    ImageCorrupt,

    /// <summary>The image needs something this machine does not have (another architecture, another vDSO, a missing file).</summary>
    ImageIncompatible,

    /// <summary>Objects or JSON text given to be written as an image file do not describe a valid image.</summary>
    InvalidImageData,

    /// <summary>A PID the image needs is taken by another process.</summary>
    PidInUse,

    /// <summary>A thread did not stop within the freeze timeout (it sleeps uninterruptibly in the kernel); it was left running.</summary>
    FreezeTimeout,

    /// <summary>An address or port a restored socket needs is taken by another socket.</summary>
    AddressInUse,

    /// <summary>A pseudo-terminal index (/dev/pts/N) the restored processes need is taken by another terminal.</summary>
    TerminalInUse,

    /// <summary>The process exited or was killed while being checkpointed.</summary>
    ProcessExited,

    /// <summary>The user stopped the operation (Ctrl+C); the process was released or the partial restore killed.</summary>
    Cancelled,

    /// <summary>Any other failure of a dump; the process was released unharmed.</summary>
    DumpFailed,

    /// <summary>Any other failure of a restore; nothing was left running.</summary>
    RestoreFailed,

    /// <summary>A page server cannot be reached, stopped answering, or broke the protocol.</summary>
    PageServerUnavailable,

    /// <summary>A page server presented a certificate that is not trusted; nothing was sent to it.</summary>
    PageServerUntrusted,

    /// <summary>A page server refused the request (its image directory is not empty, it serves another image, it could not store a dump...).</summary>
    PageServerRefused,

    /// <summary>A certificate or key file for a page server cannot be used.</summary>
    CertificateUnusable,

    /// <summary>The destination of a move cannot take the process (module, kernel, feature, CPU or files missing there, or a service address taken there), or a -ServiceAddress is not this machine's; nothing was touched.</summary>
    DestinationUnsuitable,

    /// <summary>A move failed after the final dump: the process runs on at the source, and the destination was cleaned.</summary>
    MoveFailed,
}
