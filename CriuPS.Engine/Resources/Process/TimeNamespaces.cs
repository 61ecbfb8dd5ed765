using CriuPS.Native.RemoteSyscall;
using System.Globalization;
using System.Text;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Privileges;
using CriuPS.Engine.Restore;
using CriuPS.Native.Interop;
using CriuPS.Native.Proc;

namespace CriuPS.Engine.Resources.Process;

/// <summary>
/// Time namespaces (unshare -T, with --monotonic/--boottime offsets), nested ones included: each one the tree lives
/// in, or makes for its children, is saved in timens-ID.img as CRIU writes it, with the CLOCK_MONOTONIC and
/// CLOCK_BOOTTIME values seen inside it at the dump. As with CRIU, restore sets offsets so that these clocks go on
/// from those values: a process's monotonic clock never jumps backwards (even on another machine or after a reboot)
/// and the time the tree spent saved does not count, so timeouts in progress are not cut short. The differences
/// between the tree's namespaces (a namespace nested in another with offsets of its own) are kept, since every
/// clock was read at the same dump. A namespace is made by the first process in it, or by the process that made it
/// for its children (a time_for_children other than its own, as unshare(CLONE_NEWTIME) leaves it): that process
/// unshares, the engine writes the offsets to its /proc/PID/timens_offsets (possible only before any process enters
/// the namespace) and, for its own namespace, it enters it; the others join. setns into a time namespace needs a
/// single-threaded process: this happens before the threads are made. Entering one remaps the process's vvar so
/// that the vDSO reads the namespace's clocks (the kernel does that wherever the vvar was moved).
/// </summary>
internal static class TimeNamespaces
{
    private const string Own = "time", ForChildren = "time_for_children";
    private const int Monotonic = 1, Boottime = 7;

    // KTIME_SEC_MAX / 2: the kernel refuses offsets that would put a clock beyond it.
    private const ulong LargestClockSeconds = 9_223_372_036UL / 2;

    /// <summary>
    /// At dump: records the namespace its children are born in, and saves the clocks of each namespace it lives in or
    /// makes for its children, once. Its own namespace's clocks are read by the frozen process itself (clock_gettime,
    /// the system call, which applies its namespace's offsets), as CRIU reads them from within; a namespace only its
    /// children are born in shows through its offsets, /proc/PID/timens_offsets.
    /// </summary>
    public static void Dump(DumpSession session, DumpedProcess process, TaskKobjIdsEntry ids)
    {
        var own = ProcessNamespaces.Namespace(process.Pid, Own);
        var forChildren = ProcessNamespaces.Namespace(process.Pid, ForChildren);
        if (own is null || forChildren is null)
        {
            return;
        }
        if (!ProcessNamespaces.IsEngines(process.Pid, Own) && session.TimeNamespacesSaved.Add(ids.TimeNsId))
        {
            Save(session, ids.TimeNsId, own, new TimensEntry { Monotonic = ReadInside(process, Monotonic), Boottime = ReadInside(process, Boottime) });
        }
        if (forChildren != own)
        {
            ids.CriupsTimeForChildrenNsId = session.ObjectIds.For(forChildren);
            if (!ProcessNamespaces.IsEngines(process.Pid, ForChildren) && session.TimeNamespacesSaved.Add(ids.CriupsTimeForChildrenNsId))
            {
                Save(session, ids.CriupsTimeForChildrenNsId, forChildren, ClocksOfChildren(process.Pid));
            }
        }
    }

    private static void Save(DumpSession session, uint id, string ns, TimensEntry entry)
    {
        session.WriteSingle(ImageTypes.Timens, id.ToString(CultureInfo.InvariantCulture), entry);
        session.Log.Detail($"time namespace {ns}: monotonic {Shown(entry.Monotonic)}, boottime {Shown(entry.Boottime)}");
    }

    private static Timespec ReadInside(DumpedProcess process, int clock)
    {
        var scratch = process.Injection.Scratch;
        scratch.Reset();
        var time = scratch.Reserve(16);
        process.Injection.Caller.Checked($"clock_gettime(clock {clock})", RemoteCall.ClockGettime(clock, time));
        var bytes = process.Memory.Read(time, 16);
        return new Timespec { TvSec = BitConverter.ToUInt64(bytes, 0), TvNsec = BitConverter.ToUInt64(bytes, 8) };
    }

    /// <summary>What this session lacks to make the namespaces: unshare(CLONE_NEWTIME) and setns need CAP_SYS_ADMIN, writing the offsets CAP_SYS_TIME.</summary>
    public static IEnumerable<Obstacle> Obstacles(ImageSet images, SessionPrivileges privileges)
    {
        if (!ToMake(images).Any())
        {
            yield break;
        }
        foreach (var capability in new[] { Capability.SysAdmin, Capability.SysTime }.Where(c => !privileges.Has(c)))
        {
            yield return new($"it lived in a time namespace of its own, and making one needs CAP_SYS_ADMIN and CAP_SYS_TIME", capability);
        }
    }

    /// <summary>At restore, while every process is single-threaded: makes each saved namespace, enters or joins it.</summary>
    public static void Restore(RestoreSession session, IReadOnlyList<RestoringProcess> processes)
    {
        if (!ToMake(session.Images).Any())
        {
            return;
        }
        uint engines = session.Images.Inventory.RootIds.TimeNsId;
        // Each namespace made so far, as a path that keeps naming it.
        var made = new Dictionary<uint, string>();
        foreach (var process in processes)
        {
            var ids = process.Images.Ids;
            if (ids.HasTimeNsId && ids.TimeNsId != engines)
            {
                if (!made.TryGetValue(ids.TimeNsId, out var path))
                {
                    Make(session, process, ids.TimeNsId);
                    path = $"/proc/{process.HostPid}/ns/{ForChildren}";
                }
                ProcessNamespaces.Join(process.Injection, path, Setns.CloneNewTime, $"the time namespace {ids.TimeNsId}");
                made[ids.TimeNsId] = $"/proc/{process.HostPid}/ns/{Own}";
            }
            if (ids.HasCriupsTimeForChildrenNsId && ids.CriupsTimeForChildrenNsId != ids.TimeNsId)
            {
                if (made.ContainsKey(ids.CriupsTimeForChildrenNsId))
                {
                    throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                        $"The children of process {process.Pid} are born in the time namespace {ids.CriupsTimeForChildrenNsId}, which another process of the tree made before it: only a new namespace can be its children's.",
                        session.Images.Directory);
                }
                Make(session, process, ids.CriupsTimeForChildrenNsId);
                made[ids.CriupsTimeForChildrenNsId] = $"/proc/{process.HostPid}/ns/{ForChildren}";
            }
        }
        session.Log.Detail($"time namespaces made again: {made.Count}");
    }

    /// <summary>The saved clocks of a namespace, checked: ImageCorrupt naming the file when they are missing or out of range.</summary>
    public static TimensEntry Saved(ImageSet images, uint id)
    {
        string name = id.ToString(CultureInfo.InvariantCulture);
        var file = Path.Combine(images.Directory, ImageTypes.Timens.FileName(name));
        var entries = images.Entries(ImageTypes.Timens, name);
        if (entries.Count != 1)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                $"{file}: the time namespace {id} of the tree should have its clocks in one entry; it has {entries.Count}.", file);
        }
        var entry = (TimensEntry)entries[0].Message;
        foreach (var (clock, time) in new[] { ("monotonic", entry.Monotonic), ("boottime", entry.Boottime) })
        {
            if (time is null || time.TvNsec >= (ulong)KernelTimespec.NanosecondsPerSecond || time.TvSec > LargestClockSeconds)
            {
                throw new CheckpointException(CheckpointErrorKind.ImageCorrupt,
                    $"{file}: the {clock} clock of the time namespace {id} ({(time is null ? "missing" : Shown(time))}) is not a time a clock can show.", file);
            }
        }
        return entry;
    }

    // The namespaces of the image other than the dumping engine's.
    private static IEnumerable<uint> ToMake(ImageSet images)
    {
        if (images.Inventory.RootIds is not { HasTimeNsId: true } rootIds)
        {
            return [];
        }
        return images.Processes.SelectMany(p => new[] { p.Ids.HasTimeNsId ? p.Ids.TimeNsId : rootIds.TimeNsId, p.Ids.HasCriupsTimeForChildrenNsId ? p.Ids.CriupsTimeForChildrenNsId : rootIds.TimeNsId })
            .Where(id => id != rootIds.TimeNsId).Distinct();
    }

    // The process unshares a namespace for its children, whose offsets make its clocks go on from the saved ones.
    private static void Make(RestoreSession session, RestoringProcess process, uint id)
    {
        var saved = Saved(session.Images, id);
        process.Caller.Checked("unshare(CLONE_NEWTIME)", RemoteCall.Unshare(Setns.CloneNewTime));
        var (monotonic, boottime) = (Offset(saved.Monotonic, Monotonic, "monotonic"), Offset(saved.Boottime, Boottime, "boottime"));
        string offsets = string.Create(CultureInfo.InvariantCulture, $"{Monotonic} {monotonic.Seconds} {monotonic.Nanoseconds}\n{Boottime} {boottime.Seconds} {boottime.Nanoseconds}\n");
        string path = $"/proc/{process.HostPid}/timens_offsets";
        try
        {
            // The kernel takes both lines from one write.
            using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
            file.Write(Encoding.ASCII.GetBytes(offsets));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(CheckpointErrorKind.RestoreFailed,
                $"The offsets of the time namespace {id} cannot be written to {path} ({offsets.Replace('\n', ';')}): {e.Message}", path, null, e);
        }
        session.Log.Detail($"time namespace {id} made by process {process.Pid}: offsets monotonic {monotonic.Seconds}.{monotonic.Nanoseconds:D9} s, boottime {boottime.Seconds}.{boottime.Nanoseconds:D9} s");
    }

    // The offset from the host's clock (the engine's, less the engine's own namespace's offset) to the saved value.
    private static (long Seconds, long Nanoseconds) Offset(Timespec saved, int clock, string name)
    {
        long host = Nanoseconds(ClockGettime.Now(clock)) - EngineOffset(name);
        long offset = (long)saved.TvSec * KernelTimespec.NanosecondsPerSecond + (long)saved.TvNsec - host;
        // Nanoseconds within 0..999999999, as the kernel wants them.
        return (Math.DivRem(offset - Mod(offset), KernelTimespec.NanosecondsPerSecond).Quotient, Mod(offset));
    }

    private static long Mod(long nanoseconds) => ((nanoseconds % KernelTimespec.NanosecondsPerSecond) + KernelTimespec.NanosecondsPerSecond) % KernelTimespec.NanosecondsPerSecond;

    // The clocks as a process born in the namespace sees them: the engine's, moved by the offsets.
    private static TimensEntry ClocksOfChildren(int pid)
    {
        var offsets = ReadOffsets($"/proc/{pid}/timens_offsets");
        return new TimensEntry
        {
            Monotonic = Clock(Monotonic, offsets["monotonic"] - EngineOffset("monotonic")),
            Boottime = Clock(Boottime, offsets["boottime"] - EngineOffset("boottime")),
        };
    }

    private static Timespec Clock(int clock, long offset)
    {
        long now = Nanoseconds(ClockGettime.Now(clock)) + offset;
        return new Timespec { TvSec = (ulong)(now / KernelTimespec.NanosecondsPerSecond), TvNsec = (ulong)(now % KernelTimespec.NanosecondsPerSecond) };
    }

    private static long EngineOffset(string clock) => ReadOffsets("/proc/self/timens_offsets")[clock];

    // "monotonic  <seconds> <nanoseconds>" lines, as nanoseconds by clock name.
    private static Dictionary<string, long> ReadOffsets(string path) =>
        ProcFiles.ReadText(path).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .ToDictionary(f => f[0], f => long.Parse(f[1], CultureInfo.InvariantCulture) * KernelTimespec.NanosecondsPerSecond + long.Parse(f[2], CultureInfo.InvariantCulture));

    private static long Nanoseconds((long Seconds, long Nanoseconds) time) => time.Seconds * KernelTimespec.NanosecondsPerSecond + time.Nanoseconds;

    private static string Shown(Timespec time) => $"{time.TvSec}.{time.TvNsec:D9} s";
}
