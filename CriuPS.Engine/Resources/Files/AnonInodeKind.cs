using CriuPS.Native.Interop;

namespace CriuPS.Engine.Resources.Files;

/// <summary>
/// A kind of anonymous-inode file (eventfd, signalfd, timerfd, inotify, fanotify, epoll): recognised by the name in its
/// /proc link ("anon_inode:[eventfd]"), and created anew in the engine on restore, with its state put back.
/// </summary>
internal abstract class AnonInodeKind : FileKind
{
    /// <summary>The name the kernel gives the inode: "eventfd" for "anon_inode:[eventfd]".</summary>
    protected abstract string InodeName { get; }

    public override bool Handles(DescriptorProbe probe) => probe.IsAnonInode(InodeName);

    /// <summary>How the pre-flight check names an anonymous-inode file that no kind handles ("anon_inode:[io_uring]").</summary>
    public static string DescribeUnsupported(string link)
    {
        var name = link["anon_inode:".Length..].Trim('[', ']');
        var what = name switch
        {
            "io_uring" => "an io_uring instance",
            "userfaultfd" => "a userfaultfd",
            "perf_event" => "a perf_event counter",
            _ when name.StartsWith("bpf", StringComparison.Ordinal) => "a BPF object",
            _ when name.StartsWith("kvm", StringComparison.Ordinal) => "a KVM object",
            _ => "an anonymous-inode file",
        };
        return $"{what}, {link}";
    }
}
