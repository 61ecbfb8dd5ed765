using System.Runtime.InteropServices;
using CriuPS.Engine.Dump;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Logging;
using CriuPS.Native.Interop;
using CriuPS.Native.Memory;
using CriuPS.Native.RemoteSyscall;

namespace CriuPS.Engine.Resources.Credentials;

/// <summary>Resource limits (task_rlimits_entry): read inside the process, set from outside with prlimit64.</summary>
internal static class ResourceLimits
{
    private static readonly string[] Names =
    {
        "CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
    };

    /// <summary>
    /// Asks the process itself, in one batch of injected prlimit64 calls: from outside, reading the limits of a
    /// process whose uids are not the engine's needs CAP_SYS_RESOURCE, which root need not have.
    /// </summary>
    public static TaskRlimitsEntry Dump(DumpedProcess process)
    {
        var scratch = process.Injection.Scratch;
        scratch.Reset();
        int size = Marshal.SizeOf<ResourceLimit>();
        var limits = scratch.Reserve(Prlimit.ResourceCount * size);
        var batch = new SyscallBatch(process.Injection);
        for (int resource = 0; resource < Prlimit.ResourceCount; resource++)
        {
            var slot = limits + new ByteCount((ulong)(resource * size));
            batch.Add($"prlimit64(RLIMIT_{Names[resource]})", RemoteCall.GetResourceLimit(resource, slot));
        }
        batch.Run();
        var read = process.Memory.ReadArray<ResourceLimit>(limits, Prlimit.ResourceCount);
        var entry = new TaskRlimitsEntry();
        entry.Rlimits.Add(read.Select(limit => new RlimitEntry { Cur = limit.Current, Max = limit.Maximum }));
        return entry;
    }

    /// <summary>
    /// Sets each limit. Raising a hard limit above the restoring process's needs CAP_SYS_RESOURCE; without it the
    /// hard limit stays where it is and the soft limit is set within it, with a warning.
    /// </summary>
    public static void Restore(int pid, TaskRlimitsEntry? saved, EngineLog log)
    {
        if (saved is null)
        {
            return;
        }
        for (int resource = 0; resource < Math.Min(saved.Rlimits.Count, Prlimit.ResourceCount); resource++)
        {
            var wanted = new ResourceLimit { Current = saved.Rlimits[resource].Cur, Maximum = saved.Rlimits[resource].Max };
            long result = Prlimit.TrySet(pid, resource, wanted);
            if (result == -Errno.EPERM)
            {
                var now = Prlimit.Get(pid, resource);
                var fallback = new ResourceLimit { Current = Math.Min(wanted.Current, now.Maximum), Maximum = now.Maximum };
                Prlimit.TrySet(pid, resource, fallback);
                log.Warning($"RLIMIT_{Names[resource]} of {pid}: hard limit {wanted.Maximum} needs CAP_SYS_RESOURCE; kept {now.Maximum}.");
            }
            else if (result < 0)
            {
                throw new NativeException($"prlimit64({pid}, RLIMIT_{Names[resource]})", (int)-result);
            }
        }
    }
}
