using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Proto;
using CriuPS.Engine.Resources.Process;

namespace CriuPS.Engine.Restore.Checks;

/// <summary>The parts of core-TID.img a restore cannot do without: the task's state, and each live thread's registers and thread state.</summary>
internal static class CoreChecks
{
    private const int CapabilityWords = 2;

    /// <summary>A process's own core (its leader's): a task core whose state is one a checkpoint records, with resource limits a process can have.</summary>
    public static void CheckProcess(string path, CoreEntry core)
    {
        if (core.Tc is null)
        {
            throw ImageDamage.In(path, "entries[0] has no task core (tc) for the process.");
        }
        if (core.Tc.TaskState is not (TaskAttributes.TaskAlive or ZombieImages.TaskDead or TaskAttributes.TaskStopped))
        {
            throw ImageDamage.In(path, $"entries[0].tc.task_state is {core.Tc.TaskState}; a checkpoint records {TaskAttributes.TaskAlive} (alive), {ZombieImages.TaskDead} (zombie) or {TaskAttributes.TaskStopped} (stopped).");
        }
        var limits = core.Tc.Rlimits?.Rlimits ?? [];
        for (int i = 0; i < limits.Count; i++)
        {
            // The kernel keeps every soft limit within its hard one; prlimit64 refuses anything else (EINVAL).
            if (limits[i].Cur > limits[i].Max)
            {
                throw ImageDamage.In(path, $"entries[0].tc.rlimits.rlimits[{i}]: the soft limit {limits[i].Cur} is above the hard limit {limits[i].Max}; a process's limits never are.");
            }
        }
    }

    /// <summary>A thread of a live process: saved on x86-64 (another machine's is no damage), with its registers and thread state, and whole capability sets.</summary>
    public static void CheckThread(string path, CoreEntry core)
    {
        if (core.Mtype != CoreEntry.Types.March.X8664)
        {
            throw new CheckpointException(CheckpointErrorKind.ImageIncompatible,
                $"{path}: the thread was saved on a {core.Mtype} machine; this one is x86-64.", path);
        }
        if (core.ThreadInfo is null)
        {
            throw ImageDamage.In(path, "entries[0] has no registers (thread_info) for the thread.");
        }
        if (core.ThreadCore is null)
        {
            throw ImageDamage.In(path, "entries[0] has no thread state (thread_core) for the thread.");
        }
        if (core.ThreadCore.Creds is { } creds)
        {
            // Each capability set is two 32-bit words (CRIU's CR_CAP_SIZE, the kernel's _LINUX_CAPABILITY_U32S_3): one
            // missing shifts the high word down, and the restore would ask for capabilities nobody saved.
            foreach (var (name, words) in new[] { ("cap_inh", creds.CapInh), ("cap_prm", creds.CapPrm), ("cap_eff", creds.CapEff), ("cap_bnd", creds.CapBnd) })
            {
                if (words.Count != CapabilityWords)
                {
                    throw ImageDamage.In(path, $"entries[0].thread_core.creds.{name} has {words.Count} words; a capability set has {CapabilityWords}.");
                }
            }
        }
    }
}
