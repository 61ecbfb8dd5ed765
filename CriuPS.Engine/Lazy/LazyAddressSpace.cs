using CriuPS.Native.Interop;
using CriuPS.Native.Memory;

namespace CriuPS.Engine.Lazy;

/// <summary>
/// One address space being filled through its userfaultfd: the pages it still misses and the areas registered
/// for them. A restored process has one; a child it forks during the transfer gets its own (the kernel hands us
/// the child's userfaultfd), filled from the same image pages as its parent.
/// </summary>
internal sealed class LazyAddressSpace : IDisposable
{
    public LazyAddressSpace(FileDescriptor uffd, int imagePid, int? processId, PageRanges missing, PageRanges registered)
    {
        Uffd = uffd;
        ImagePid = imagePid;
        ProcessId = processId;
        Missing = missing;
        Registered = registered;
    }

    public FileDescriptor Uffd { get; }

    /// <summary>The process of the image whose pages fill this address space.</summary>
    public int ImagePid { get; }

    /// <summary>The process, or null for a child forked during the transfer (the fork event does not say).</summary>
    public int? ProcessId { get; }

    /// <summary>The saved pages not delivered yet.</summary>
    public PageRanges Missing { get; }

    /// <summary>The areas registered for missing-page faults, as the process has moved and unmapped them since.</summary>
    public PageRanges Registered { get; }

    /// <summary>Faults read but not resolved yet because the layout was changing (UFFDIO_* said EAGAIN).</summary>
    public List<Address> DeferredFaults { get; } = new();

    /// <summary>The address space ended (the process exited or executed another program).</summary>
    public bool Gone { get; set; }

    public bool IsComplete => Missing.IsEmpty && DeferredFaults.Count == 0;

    public string Name => ProcessId is { } pid ? $"process {pid}" : $"a child forked by process {ImagePid}";

    public void Dispose() => Uffd.Dispose();
}
