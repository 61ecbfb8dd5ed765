using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Logging;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.Proc;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Memory;

/// <summary>
/// Which pages of a process were written since its last pre-dump, on kernels without soft-dirty bits: a userfaultfd
/// in asynchronous write-protect mode (UFFD_FEATURE_WP_ASYNC: the kernel lifts the protection of a page itself on
/// its first write, and PAGEMAP_SCAN reports the page as written; UFFD_FEATURE_WP_UNPOPULATED: pages not there yet
/// are protected too) on every private memory area, read and protected again with PAGEMAP_SCAN
/// (<see cref="PageScanner.ScanWritten"/>).
/// <para>
/// Where the state lives between two cmdlet invocations: here, in the process that runs the engine (the PowerShell
/// session), in a table keyed by PID. A userfaultfd belongs to the address space of the process that creates it, so
/// it is made inside the target with an injected userfaultfd(2); the engine takes a copy with pidfd_getfd and closes
/// the target's in the same stop. The registration lives as long as the engine's copy. So the target never holds a
/// descriptor of ours: there is nothing for it to see, close or hand to its children, and nothing to remove from its
/// descriptor table or keep out of its image at the final dump, which ends the tracking by closing our copy. A
/// session that ends without a final dump ends the tracking with it; a later dump then copies everything, and says so.
/// </para>
/// <para>
/// Each entry remembers the image that last armed it (its inventory's run id): writes are known relative to that
/// image only. A dump that names another parent, a process that was restarted under the same PID, an address space
/// replaced by exec or areas mapped since (never registered), all fall back to copying the pages concerned in full.
/// </para>
/// </summary>
internal static class WriteTracking
{
    /// <summary>What every tracking userfaultfd asks for.</summary>
    public const ulong Features = Userfaultfd.FeatureWpAsync | Userfaultfd.FeatureWpUnpopulated;

    // O_CLOEXEC | O_NONBLOCK, user faults only: allowed without CAP_SYS_PTRACE (vm.unprivileged_userfaultfd = 0).
    private const ulong CreateFlags = (ulong)(O.CLOEXEC | O.NONBLOCK) | Userfaultfd.UserModeOnly;

    private static readonly ConcurrentDictionary<int, TrackedProcess> Table = new();

    private static readonly Lazy<(bool Available, string Detail)> SelfTestResult = new(RunSelfTest);

    /// <summary>
    /// Whether write tracking works on this machine, tried once on memory of our own: protect two pages, write one,
    /// and PAGEMAP_SCAN must report exactly that one, then nothing once protected again.
    /// </summary>
    public static (bool Available, string Detail) SelfTest() => SelfTestResult.Value;

    /// <summary>
    /// The tracking of <paramref name="pid"/> that knows what was written since the image with run id
    /// <paramref name="parentRunId"/> was taken, or null with the reason in <paramref name="why"/>.
    /// </summary>
    public static TrackedProcess? Find(int pid, string parentName, string? parentRunId, out string why)
    {
        if (!Table.TryGetValue(pid, out var tracking))
        {
            why = $"the writes of process {pid} since '{parentName}' are not known (write tracking lives in the PowerShell session that took the pre-dump, and a final checkpoint or a failed pre-dump ends it)";
            return null;
        }
        if (!tracking.IsSameProcess())
        {
            End(pid);
            why = $"process {pid} is not the process that was tracked (it was restarted under the same PID)";
            return null;
        }
        if (tracking.ArmedBy is null || tracking.ArmedBy != parentRunId)
        {
            why = $"the write tracking of process {pid} does not start at '{parentName}' (a later pre-dump took it over)";
            return null;
        }
        why = "";
        return tracking;
    }

    /// <summary>
    /// Starts tracking a frozen process afresh: a userfaultfd made inside it, taken over and closed there, in place of
    /// any tracking it had. No area is registered yet, and the entry is armed by no image until <see cref="Publish"/>.
    /// </summary>
    public static TrackedProcess Start(int pid, Injection injection)
    {
        // The tracking of processes that ended without a final dump holds their userfaultfd (and mm) until now.
        foreach (var (other, stale) in Table)
        {
            if (!stale.IsSameProcess())
            {
                End(other);
            }
        }
        var uffd = injection.CallAndClose("userfaultfd", RemoteCall.Userfaultfd(CreateFlags), fd =>
        {
            using var pidfd = Pidfd.Open(pid);
            return Pidfd.GetFd(pidfd, fd);
        });
        var tracking = new TrackedProcess(pid, ProcStat.Read(pid).StartTime, uffd);
        try
        {
            Userfaultfd.Handshake(uffd, Features);
        }
        catch
        {
            tracking.Dispose();
            throw;
        }
        End(pid);
        Table[pid] = tracking;
        return tracking;
    }

    /// <summary>
    /// Arms the tracking of a frozen process once a pre-dump has planned its pages: the tracking the plan relied on
    /// is kept (scanning protected its pages again), and every private area it did not cover, whose pages the plan
    /// copies in full, is registered and protected. A registration the current userfaultfd cannot make means the
    /// address space it belongs to is gone (the process exec'd): the tracking starts over with a new one, for every
    /// area. An area that cannot be registered at all stays untracked; the next dump copies it in full.
    /// </summary>
    public static TrackedProcess Arm(DumpedProcess process, PagePlan plan, IReadOnlyList<SavedVma> areas, EngineLog log)
    {
        var tracking = plan.Tracking;
        var covered = plan.Tracked;
        while (true)
        {
            bool fresh = tracking is null;
            tracking ??= Start(process.Pid, process.Injection);
            var registered = new List<AddressRange>();
            bool startOver = false;
            foreach (var area in areas.Where(a => a.Policy == PagePolicy.Private && !covered.Contains(a)))
            {
                int errno = tracking.Register(area.Info.Range);
                if (errno == 0)
                {
                    registered.Add(area.Info.Range);
                    continue;
                }
                log.Detail($"write tracking of {process.Pid}: {area.Info} cannot be registered: {Errno.Describe(errno)}{(fresh ? "" : "; tracking starts over")}");
                if (!fresh)
                {
                    startOver = true;
                    break;
                }
            }
            if (startOver)
            {
                tracking = null;
                covered = [];
                continue;
            }
            foreach (var area in registered)
            {
                tracking.WriteProtect(area);
            }
            log.Detail($"write tracking of {process.Pid}: {registered.Count} area(s) registered{(fresh ? " with a new userfaultfd" : "")}, {covered.Count} already tracked");
            return tracking;
        }
    }

    /// <summary>Records that the writes of this tracking are now counted from the image with run id <paramref name="runId"/>.</summary>
    public static void Publish(TrackedProcess tracking, string runId) => tracking.ArmedBy = runId;

    /// <summary>Whether this process tracks the writes of <paramref name="pid"/>.</summary>
    public static bool Tracks(int pid) => Table.ContainsKey(pid);

    /// <summary>Ends the tracking of <paramref name="pid"/>, if any: closing the userfaultfd unregisters every area and lifts every protection.</summary>
    public static void End(int pid)
    {
        if (Table.TryRemove(pid, out var tracking))
        {
            tracking.Dispose();
        }
    }

    private static (bool, string) RunSelfTest()
    {
        if (!PagemapScan.IsSupported())
        {
            return (false, "the PAGEMAP_SCAN ioctl is missing (Linux 6.7+)");
        }
        var start = new Address(Mmap.PrivateAnonymous(2 * (ulong)Page.Size));
        var range = new AddressRange(start, start + new ByteCount(2 * (ulong)Page.Size));
        try
        {
            using var uffd = Userfaultfd.Create(CreateFlags);
            Userfaultfd.Handshake(uffd, Features);
            int errno = Userfaultfd.TryRegisterWriteProtect(uffd, range);
            if (errno != 0)
            {
                return (false, $"ioctl(UFFDIO_REGISTER) in write-protect mode failed: {Errno.Describe(errno)}");
            }
            Userfaultfd.WriteProtect(uffd, range);
            var second = start + new ByteCount((ulong)Page.Size);
            Marshal.WriteByte((nint)second.Value, 1);
            using var scanner = new PageScanner(Environment.ProcessId, usePagemapScan: true);
            var written = scanner.ScanWritten(range, rearm: true);
            var again = scanner.ScanWritten(range, rearm: true);
            var expected = new AddressRange(second, range.End);
            return written is [var only] && only == expected && again is []
                ? (true, "a write to a page protected by a userfaultfd (WP_ASYNC | WP_UNPOPULATED) is reported by PAGEMAP_SCAN, and protected again")
                : (false, $"PAGEMAP_SCAN reported written pages [{string.Join(", ", written ?? [])}], then [{string.Join(", ", again ?? [])}]; expected [{expected}], then none");
        }
        catch (NativeException e)
        {
            return (false, e.Message);
        }
        finally
        {
            Mmap.Munmap(range.Start.Value, range.Length.Value);
        }
    }
}

/// <summary>One process's write tracking: the userfaultfd (our copy), and the image whose dump last armed it.</summary>
internal sealed class TrackedProcess : IDisposable
{
    private readonly ulong startTime;

    public TrackedProcess(int pid, ulong startTime, FileDescriptor uffd)
    {
        Pid = pid;
        this.startTime = startTime;
        Uffd = uffd;
    }

    public int Pid { get; }

    public FileDescriptor Uffd { get; }

    /// <summary>The run id of the image writes are counted from; null until a pre-dump with this tracking is complete.</summary>
    public string? ArmedBy { get; set; }

    /// <summary>Whether the process with this PID is still the one tracked (same start time).</summary>
    public bool IsSameProcess()
    {
        try
        {
            return ProcStat.Read(Pid).StartTime == startTime;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Registers a whole area for write protection; returns 0 or the errno (any, once the address space the userfaultfd belongs to is gone).</summary>
    public int Register(AddressRange area) => Userfaultfd.TryRegisterWriteProtect(Uffd, area);

    /// <summary>Protects every page of a registered area, so that its next write is recorded.</summary>
    public void WriteProtect(AddressRange area) => Userfaultfd.WriteProtect(Uffd, area);

    public void Dispose() => Uffd.Dispose();
}
